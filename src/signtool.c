/*
 * `herald sign` and `herald verify` (see signtool.h): command-line parsing,
 * stdin and printing around sign.c, which makes every decision. The worker
 * and these tools therefore sign with the same code.
 *
 * Exit status: 0 success (or "valid"), 1 "invalid" (verify only), 2 when the
 * command line, a secret or the input cannot be used. Messages go to stderr
 * and say what failed first, with the subject in quotes.
 */
#include "herald/signtool.h"
#include "herald/buf.h"
#include "herald/err.h"
#include "herald/sign.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EXIT_VALID   0
#define EXIT_INVALID 1
#define EXIT_USAGE   2

#define BODY_MAX          (16 * 1024 * 1024)
#define SECRETS_MAX       16
#define HEADERS_MAX       32
#define GEN_ID_CHARS      27 /* as long as the ids Svix hands out */
#define DEFAULT_TOLERANCE 300

static const char sign_usage[] =
    "usage: herald sign [--scheme S] --secret K [--secret K2 ...] [--id ID]\n"
    "                   [--timestamp T] [--header NAME] < body\n"
    "       herald sign --scheme standard-webhooks-ed25519 --secret whsk_... --public-key\n"
    "\n"
    "Prints the signature headers herald would send with the body read from\n"
    "stdin, one \"Name: value\" a line.\n"
    "\n"
    "  --scheme S      signature scheme (default standard-webhooks)\n"
    "  --secret K      a secret; repeat it to sign with several, as during a rotation\n"
    "  --id ID         webhook-id (default msg_ and random characters)\n"
    "  --timestamp T   unix seconds (default now)\n"
    "  --header NAME   signature header for the single-header schemes (default X-Signature)\n"
    "  --public-key    print the whpk_ public key of each whsk_ secret and exit\n";

static const char verify_usage[] =
    "usage: herald verify [--scheme S] --secret K --header 'Name: value' [--header ...]\n"
    "                     [--header-name NAME] [--tolerance SECONDS] [--now T] < body\n"
    "\n"
    "Checks the signature headers of a request against the body read from stdin.\n"
    "Prints \"valid\" and exits 0, or prints \"invalid: <reason>\" to stderr and exits 1.\n"
    "\n"
    "  --scheme S          signature scheme (default standard-webhooks)\n"
    "  --secret K          secret, or for standard-webhooks-ed25519 a whpk_ public key;\n"
    "                      repeat it to accept any of several\n"
    "  --header 'N: V'     a request header as received; repeat for each\n"
    "  --header-name NAME  signature header for the single-header schemes (default X-Signature)\n"
    "  --tolerance SECONDS allowed clock difference for timestamps (default 300)\n"
    "  --now T             unix seconds to check timestamps against (default now)\n";

static void print_schemes(const char *prog)
{
    fprintf(stderr, "%s: schemes:", prog);
    for (int i = 0; i < SIGN_SCHEME_COUNT; i++)
        fprintf(stderr, " %s", sign_scheme_name((enum sign_scheme)i));
    fputc('\n', stderr);
}

static int usage_error(const char *prog, const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int usage_error(const char *prog, const char *usage, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (usage)
        fputs(usage, stderr);
    return EXIT_USAGE;
}

/* Non-negative decimal seconds; nothing else, so typos are not read as 0. */
static int parse_seconds(const char *s, int64_t *out)
{
    char *end;
    long long v;

    if (!s || *s < '0' || *s > '9')
        return HERALD_EINVAL;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end)
        return HERALD_EINVAL;
    *out = (int64_t)v;
    return 0;
}

/* Reads all of stdin, binary-safe; the buffer's maximum caps it. */
static int read_body(struct buf *body)
{
    char chunk[16 * 1024];

    for (;;) {
        ssize_t n = read(0, chunk, sizeof(chunk));
        int rc;

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return HERALD_EIO;
        if (n == 0)
            return 0;
        rc = buf_append(body, chunk, (size_t)n);
        if (rc)
            return rc;
    }
}

static int read_body_or_complain(const char *prog, struct buf *body)
{
    int rc = read_body(body);

    if (rc == HERALD_ETOOBIG)
        fprintf(stderr, "%s: body on stdin is larger than %d MiB\n", prog, BODY_MAX >> 20);
    else if (rc)
        fprintf(stderr, "%s: reading the body from stdin failed: %s\n", prog,
                rc == HERALD_EIO ? strerror(errno) : herald_strerror(rc));
    return rc;
}

/* "msg_" and random base62, like the ids Standard Webhooks senders use. */
static int random_id(char *out, size_t outlen)
{
    static const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    unsigned char r[64];
    size_t n = 4;

    if (outlen < 4 + GEN_ID_CHARS + 1)
        return HERALD_EINVAL;
    memcpy(out, "msg_", 4);
    while (n < 4 + GEN_ID_CHARS) {
        if (RAND_bytes(r, sizeof(r)) != 1)
            return HERALD_ECRYPTO;
        /* Rejection sampling keeps every character equally likely. */
        for (size_t i = 0; i < sizeof(r) && n < 4 + GEN_ID_CHARS; i++) {
            if (r[i] < 248)
                out[n++] = alphabet[r[i] % 62];
        }
    }
    out[n] = '\0';
    return 0;
}

static int parse_scheme(const char *prog, const char *name, enum sign_scheme *scheme)
{
    if (sign_scheme_parse(name, scheme) == 0)
        return 0;
    fprintf(stderr, "%s: unknown scheme \"%s\"\n", prog, name);
    print_schemes(prog);
    return EXIT_USAGE;
}

/* Reports a getopt failure; optopt and argv[optind - 1] say which option. */
static int bad_option(const char *prog, const char *usage, int c, char **argv)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "";

    if (c == ':')
        return usage_error(prog, usage, "option \"%s\" needs a value", arg);
    return usage_error(prog, usage, "unknown option \"%s\"", arg);
}

static void release_keys(struct sign_key *keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sign_key_release(&keys[i]);
}

enum {
    OPT_SCHEME = 256,
    OPT_SECRET,
    OPT_ID,
    OPT_TIMESTAMP,
    OPT_HEADER,
    OPT_PUBLIC_KEY,
    OPT_HEADER_NAME,
    OPT_TOLERANCE,
    OPT_NOW
};

struct sign_args {
    enum sign_scheme scheme;
    const char *secrets[SECRETS_MAX];
    size_t nsecrets;
    const char *id;
    const char *header;
    int64_t timestamp;
    bool have_timestamp;
    bool public_key;
};

static int parse_sign_args(const char *prog, int argc, char **argv, struct sign_args *a)
{
    static const struct option opts[] = {
        {"scheme", required_argument, NULL, OPT_SCHEME},
        {"secret", required_argument, NULL, OPT_SECRET},
        {"id", required_argument, NULL, OPT_ID},
        {"timestamp", required_argument, NULL, OPT_TIMESTAMP},
        {"header", required_argument, NULL, OPT_HEADER},
        {"public-key", no_argument, NULL, OPT_PUBLIC_KEY},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    /* optind = 0 makes glibc start over, for a second call in one process. */
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_SCHEME:
            if (parse_scheme(prog, optarg, &a->scheme))
                return EXIT_USAGE;
            break;
        case OPT_SECRET:
            if (a->nsecrets == SECRETS_MAX)
                return usage_error(prog, NULL, "more than %d \"--secret\" options", SECRETS_MAX);
            a->secrets[a->nsecrets++] = optarg;
            break;
        case OPT_ID:
            a->id = optarg;
            break;
        case OPT_TIMESTAMP:
            if (parse_seconds(optarg, &a->timestamp))
                return usage_error(prog, NULL, "timestamp \"%s\" is not unix seconds", optarg);
            a->have_timestamp = true;
            break;
        case OPT_HEADER:
            a->header = optarg;
            break;
        case OPT_PUBLIC_KEY:
            a->public_key = true;
            break;
        case 'h':
            fputs(sign_usage, stdout);
            return -1;
        default:
            return bad_option(prog, sign_usage, c, argv);
        }
    }
    if (optind < argc)
        return usage_error(prog, sign_usage, "unexpected argument \"%s\"", argv[optind]);
    if (a->scheme != SIGN_NONE && a->nsecrets == 0)
        return usage_error(prog, sign_usage, "scheme \"%s\" needs at least one \"--secret\"",
                           sign_scheme_name(a->scheme));
    if (a->header && !sign_scheme_takes_header(a->scheme))
        return usage_error(prog, NULL,
                           "scheme \"%s\" has fixed header names; \"--header\" "
                           "does not apply",
                           sign_scheme_name(a->scheme));
    if (a->public_key && a->scheme != SIGN_STANDARD_WEBHOOKS_ED25519)
        return usage_error(prog, NULL,
                           "\"--public-key\" needs scheme "
                           "\"standard-webhooks-ed25519\"");
    return 0;
}

static int decode_keys(const char *prog, enum sign_scheme scheme, const char *const *secrets,
                       size_t n, struct sign_key *keys)
{
    char why[256];

    for (size_t i = 0; i < n; i++) {
        int rc = sign_key_decode(scheme, secrets[i], &keys[i], why, sizeof(why));
        if (rc) {
            release_keys(keys, i);
            fprintf(stderr, "%s: secret #%zu is unusable: %s\n", prog, i + 1,
                    rc == HERALD_EINVAL ? why : herald_strerror(rc));
            return EXIT_USAGE;
        }
    }
    return 0;
}

static int print_public_keys(const char *prog, const struct sign_key *keys, size_t n)
{
    char pub[SIGN_PUBLIC_KEY_MAX];

    for (size_t i = 0; i < n; i++) {
        int rc = sign_public_key(&keys[i], pub, sizeof(pub));
        if (rc) {
            fprintf(stderr, "%s: deriving the public key of secret #%zu failed: %s\n", prog, i + 1,
                    herald_strerror(rc));
            return EXIT_USAGE;
        }
        printf("%s\n", pub);
    }
    return 0;
}

int signtool_sign(int argc, char **argv)
{
    const char *prog = "herald sign";
    struct sign_args a = {.scheme = SIGN_STANDARD_WEBHOOKS};
    struct sign_key keys[SECRETS_MAX];
    struct sign_headers out = {.n = 0};
    struct sign_input in;
    struct buf body;
    char idbuf[64], why[256];
    int rc, status = EXIT_USAGE;

    buf_init(&body, BODY_MAX);
    rc = parse_sign_args(prog, argc, argv, &a);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (decode_keys(prog, a.scheme, a.secrets, a.nsecrets, keys))
        return EXIT_USAGE;
    if (a.public_key) {
        status = print_public_keys(prog, keys, a.nsecrets);
        goto out;
    }
    if (!a.id) {
        rc = random_id(idbuf, sizeof(idbuf));
        if (rc) {
            fprintf(stderr, "%s: generating a message id failed: %s\n", prog, herald_strerror(rc));
            goto out;
        }
        a.id = idbuf;
    }
    if (read_body_or_complain(prog, &body))
        goto out;
    in = (struct sign_input){
        .msg_id = a.id,
        .timestamp = a.have_timestamp ? a.timestamp : (int64_t)time(NULL),
        .body = body.data ? body.data : "",
        .body_len = body.len,
    };
    rc = sign_request_check(a.scheme, a.header, &in, why, sizeof(why));
    if (rc) {
        fprintf(stderr, "%s: cannot sign: %s\n", prog, why);
        goto out;
    }
    rc = sign_request(a.scheme, a.header, keys, a.nsecrets, &in, &out);
    if (rc) {
        fprintf(stderr, "%s: signing failed: %s\n", prog, herald_strerror(rc));
        goto out;
    }
    for (size_t i = 0; i < out.n; i++)
        printf("%s: %s\n", out.h[i].name, out.h[i].value);
    status = fflush(stdout) == 0 ? EXIT_VALID : EXIT_USAGE;
out:
    sign_headers_release(&out);
    release_keys(keys, a.nsecrets);
    buf_release(&body);
    return status;
}

struct verify_args {
    enum sign_scheme scheme;
    const char *secrets[SECRETS_MAX];
    size_t nsecrets;
    char *names[HEADERS_MAX];
    char *values[HEADERS_MAX];
    size_t nheaders;
    const char *header_name;
    int64_t tolerance;
    int64_t now;
};

/* "Name: value" as curl -v or a proxy log prints it; the value is trimmed. */
static int add_header_arg(const char *prog, struct verify_args *a, const char *arg)
{
    const char *colon = strchr(arg, ':'), *v, *end;
    size_t nlen;

    if (a->nheaders == HEADERS_MAX)
        return usage_error(prog, NULL, "more than %d \"--header\" options", HEADERS_MAX);
    nlen = colon ? (size_t)(colon - arg) : 0;
    while (nlen && (arg[nlen - 1] == ' ' || arg[nlen - 1] == '\t'))
        nlen--;
    if (!colon || nlen == 0)
        return usage_error(prog, NULL, "header \"%s\" is not of the form \"Name: value\"", arg);
    a->names[a->nheaders] = strndup(arg, nlen);
    if (!a->names[a->nheaders])
        return usage_error(prog, NULL, "out of memory");
    for (v = colon + 1; *v == ' ' || *v == '\t';)
        v++;
    end = v + strlen(v);
    while (end > v && strchr(" \t\r\n", end[-1]))
        end--;
    a->values[a->nheaders] = strndup(v, (size_t)(end - v));
    if (!a->values[a->nheaders]) {
        free(a->names[a->nheaders]);
        return usage_error(prog, NULL, "out of memory");
    }
    a->nheaders++;
    return 0;
}

static void verify_args_release(struct verify_args *a)
{
    for (size_t i = 0; i < a->nheaders; i++) {
        free(a->names[i]);
        free(a->values[i]);
    }
    a->nheaders = 0;
}

static int parse_verify_args(const char *prog, int argc, char **argv, struct verify_args *a)
{
    static const struct option opts[] = {
        {"scheme", required_argument, NULL, OPT_SCHEME},
        {"secret", required_argument, NULL, OPT_SECRET},
        {"header", required_argument, NULL, OPT_HEADER},
        {"header-name", required_argument, NULL, OPT_HEADER_NAME},
        {"tolerance", required_argument, NULL, OPT_TOLERANCE},
        {"now", required_argument, NULL, OPT_NOW},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char why[256];
    int c;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_SCHEME:
            if (parse_scheme(prog, optarg, &a->scheme))
                return EXIT_USAGE;
            break;
        case OPT_SECRET:
            if (a->nsecrets == SECRETS_MAX)
                return usage_error(prog, NULL, "more than %d \"--secret\" options", SECRETS_MAX);
            a->secrets[a->nsecrets++] = optarg;
            break;
        case OPT_HEADER:
            if (add_header_arg(prog, a, optarg))
                return EXIT_USAGE;
            break;
        case OPT_HEADER_NAME:
            a->header_name = optarg;
            break;
        case OPT_TOLERANCE:
            if (parse_seconds(optarg, &a->tolerance))
                return usage_error(prog, NULL, "tolerance \"%s\" is not a number of seconds",
                                   optarg);
            break;
        case OPT_NOW:
            if (parse_seconds(optarg, &a->now))
                return usage_error(prog, NULL, "now \"%s\" is not unix seconds", optarg);
            break;
        case 'h':
            fputs(verify_usage, stdout);
            return -1;
        default:
            return bad_option(prog, verify_usage, c, argv);
        }
    }
    if (optind < argc)
        return usage_error(prog, verify_usage, "unexpected argument \"%s\"", argv[optind]);
    if (a->scheme != SIGN_NONE && a->nsecrets == 0)
        return usage_error(prog, verify_usage, "scheme \"%s\" needs a \"--secret\"",
                           sign_scheme_name(a->scheme));
    if (a->scheme != SIGN_NONE && a->nheaders == 0)
        return usage_error(prog, verify_usage,
                           "no \"--header\" given; pass the request's "
                           "signature headers");
    if (a->header_name && !sign_scheme_takes_header(a->scheme))
        return usage_error(prog, NULL,
                           "scheme \"%s\" has fixed header names; "
                           "\"--header-name\" does not apply",
                           sign_scheme_name(a->scheme));
    if (sign_request_check(a->scheme, a->header_name, NULL, why, sizeof(why)))
        return usage_error(prog, NULL, "%s", why);
    return 0;
}

int signtool_verify(int argc, char **argv)
{
    const char *prog = "herald verify";
    struct verify_args a = {
        .scheme = SIGN_STANDARD_WEBHOOKS, .tolerance = DEFAULT_TOLERANCE, .now = -1};
    struct buf body;
    char why[256], first_why[256] = "";
    int rc, status = EXIT_USAGE;

    buf_init(&body, BODY_MAX);
    rc = parse_verify_args(prog, argc, argv, &a);
    if (rc) {
        verify_args_release(&a);
        return rc < 0 ? 0 : rc;
    }
    if (a.now < 0)
        a.now = (int64_t)time(NULL);
    if (read_body_or_complain(prog, &body))
        goto out;
    if (a.scheme == SIGN_NONE) {
        puts("valid");
        status = EXIT_VALID;
        goto out;
    }
    /* Valid when any one secret verifies, as a receiver mid-rotation does. */
    for (size_t i = 0; i < a.nsecrets; i++) {
        rc = sign_verify(a.scheme, a.header_name, a.secrets[i], (const char *const *)a.names,
                         (const char *const *)a.values, a.nheaders, body.data ? body.data : "",
                         body.len, a.now, a.tolerance, why, sizeof(why));
        if (rc == 0) {
            puts("valid");
            status = EXIT_VALID;
            goto out;
        }
        if (rc == HERALD_EINVAL) {
            fprintf(stderr, "%s: secret #%zu is unusable: %s\n", prog, i + 1, why);
            goto out;
        }
        if (rc != HERALD_EREFUSED) {
            fprintf(stderr, "%s: verifying failed: %s\n", prog, herald_strerror(rc));
            goto out;
        }
        if (!first_why[0])
            snprintf(first_why, sizeof(first_why), "%s", why);
    }
    fprintf(stderr, "invalid: %s\n", first_why);
    status = EXIT_INVALID;
out:
    fflush(stdout);
    verify_args_release(&a);
    buf_release(&body);
    return status;
}
