/*
 * Operator commands over a synchronous Redis connection; see admin.h.
 *
 * Writes go through small Lua scripts so a subscription document, its
 * tenant's index set and the change notification move together: a worker
 * never sees an id in herald:tenant:{t} whose document says another tenant
 * for longer than one script run.
 */
#include "herald/admin.h"
#include "herald/config.h"
#include "herald/err.h"
#include "herald/log.h"
#include "herald/redis.h"
#include "herald/subs.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define DOC_MAX (1 << 20)

/* Upsert: moves the id between tenant sets when its tenant changed, then notifies both. */
static const char put_script[] =
    "local old = redis.call('GET', KEYS[1])\n"
    "local oldtenant = nil\n"
    "if old then\n"
    "  local ok, d = pcall(cjson.decode, old)\n"
    "  if ok and type(d) == 'table' and type(d.tenant) == 'string' then oldtenant = d.tenant end\n"
    "end\n"
    "redis.call('SET', KEYS[1], ARGV[1])\n"
    "redis.call('SADD', 'herald:tenant:' .. ARGV[2], ARGV[3])\n"
    "if oldtenant and oldtenant ~= ARGV[2] then\n"
    "  redis.call('SREM', 'herald:tenant:' .. oldtenant, ARGV[3])\n"
    "  redis.call('PUBLISH', 'herald:changes', oldtenant)\n"
    "end\n"
    "redis.call('PUBLISH', 'herald:changes', ARGV[2])\n"
    "if old then return 1 else return 0 end\n";

static const char delete_script[] =
    "local old = redis.call('GET', KEYS[1])\n"
    "if not old then return 0 end\n"
    "local ok, d = pcall(cjson.decode, old)\n"
    "redis.call('DEL', KEYS[1])\n"
    "if ok and type(d) == 'table' and type(d.tenant) == 'string' then\n"
    "  redis.call('SREM', 'herald:tenant:' .. d.tenant, ARGV[1])\n"
    "  redis.call('PUBLISH', 'herald:changes', d.tenant)\n"
    "else\n"
    "  redis.call('PUBLISH', 'herald:changes', '*')\n"
    "end\n"
    "return 1\n";

struct admin {
    struct admin_ctx ctx;
    bool json;
    bool show_secrets;
    const char *tenant;
};

static void subs_usage(FILE *out)
{
    fprintf(out, "usage: herald subs [--config FILE] [--redis URL] COMMAND ...\n"
                 "  put [FILE|-]               validate a subscription JSON and store it\n"
                 "  get ID [--show-secrets]    print one subscription (secrets redacted)\n"
                 "  list [--tenant T] [--json] list subscriptions\n"
                 "  delete ID                  remove a subscription\n");
}

int admin_ctx_init(struct admin_ctx *a, const char *config_path, const char *redis_url, char **envp)
{
    char err[512];
    memset(a, 0, sizeof(*a));
    if (config_init(&a->cfg))
        return 1;
    if ((config_path && config_load_file(&a->cfg, config_path, err, sizeof(err))) ||
        config_load_env(&a->cfg, envp, err, sizeof(err)) ||
        (redis_url && config_set(&a->cfg, "redis.url", redis_url, err, sizeof(err)))) {
        fprintf(stderr, "herald: %s\n", err);
        config_release(&a->cfg);
        return 2;
    }
    return 0;
}

void admin_ctx_release(struct admin_ctx *a)
{
    if (a->rc)
        redisFree(a->rc);
    a->rc = NULL;
    config_release(&a->cfg);
}

int admin_redis(struct admin_ctx *a)
{
    struct redis_url u;
    struct timeval tv = {a->cfg.redis_timeout_ms / 1000, (a->cfg.redis_timeout_ms % 1000) * 1000};
    redisReply *r;
    char url[512];

    if (a->rc)
        return 0;
    if (redis_url_parse(a->cfg.redis_url, &u)) {
        fprintf(stderr, "herald: invalid value for \"redis.url\"\n");
        return 2;
    }
    a->rc = redisConnectWithTimeout(u.host, u.port, tv);
    if (!a->rc || a->rc->err) {
        config_redact_url(a->cfg.redis_url, url, sizeof(url));
        fprintf(stderr, "herald: cannot connect to Redis at \"%s\": %s\n", url,
                a->rc ? a->rc->errstr : "out of memory");
        OPENSSL_cleanse(u.password, sizeof(u.password));
        return 1;
    }
    redisSetTimeout(a->rc, tv);
    if (u.password[0]) {
        r = redisCommand(a->rc, "AUTH %s", u.password);
        OPENSSL_cleanse(u.password, sizeof(u.password));
        if (!r || r->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "herald: Redis AUTH failed: %s\n", r ? r->str : a->rc->errstr);
            freeReplyObject(r);
            return 1;
        }
        freeReplyObject(r);
    }
    if (u.db) {
        r = redisCommand(a->rc, "SELECT %d", u.db);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "herald: Redis SELECT failed: %s\n", r ? r->str : a->rc->errstr);
            freeReplyObject(r);
            return 1;
        }
        freeReplyObject(r);
    }
    return 0;
}

redisReply *admin_command(struct admin_ctx *a, const char *fmt, ...)
{
    va_list ap;
    redisReply *r;
    va_start(ap, fmt);
    r = redisvCommand(a->rc, fmt, ap);
    va_end(ap);
    if (!r) {
        fprintf(stderr, "herald: Redis: %s\n", a->rc->errstr);
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "herald: Redis: %s\n", r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

static char *read_all(FILE *f, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *p = malloc(cap);
    while (p) {
        size_t got;
        if (n + 1 >= cap) {
            char *q;
            if (cap >= DOC_MAX) {
                free(p);
                errno = EFBIG;
                return NULL;
            }
            q = realloc(p, cap * 2);
            if (!q) {
                free(p);
                return NULL;
            }
            p = q;
            cap *= 2;
        }
        got = fread(p + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                free(p);
                return NULL;
            }
            break;
        }
    }
    if (p) {
        p[n] = '\0';
        *len = n;
    }
    return p;
}

static int cmd_put(struct admin *a, int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "-";
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    char field[64], why[256], key[200], *doc;
    struct sub *sub = NULL;
    redisReply *r;
    size_t len;
    int rc;

    if (!f) {
        fprintf(stderr, "herald: cannot open \"%s\": %s\n", path, strerror(errno));
        return 1;
    }
    doc = read_all(f, &len);
    if (f != stdin)
        fclose(f);
    if (!doc) {
        fprintf(stderr, "herald: cannot read \"%s\": %s\n", path, strerror(errno));
        return 1;
    }
    rc = subs_parse(doc, len, &sub, field, sizeof(field), why, sizeof(why));
    if (rc) {
        if (rc == HERALD_EINVAL)
            fprintf(stderr, "herald: invalid subscription: field \"%s\": %s\n", field, why);
        else
            fprintf(stderr, "herald: %s\n", herald_strerror(rc));
        free(doc);
        return 1;
    }
    if (a->ctx.cfg.delivery_https_only && strncmp(sub->url, "https://", 8) != 0) {
        fprintf(stderr, "herald: invalid subscription: field \"url\": delivery.https_only is "
                        "set, so the URL must be https\n");
        subs_unref(sub);
        free(doc);
        return 1;
    }
    if ((rc = admin_redis(&a->ctx))) {
        subs_unref(sub);
        free(doc);
        return rc;
    }
    snprintf(key, sizeof(key), "herald:sub:%s", sub->id);
    r = admin_command(&a->ctx, "EVAL %s 1 %s %b %s %s", put_script, key, doc, len, sub->tenant,
                      sub->id);
    free(doc);
    if (!r) {
        subs_unref(sub);
        return 1;
    }
    printf("%s subscription \"%s\" of tenant \"%s\"\n", r->integer ? "updated" : "created", sub->id,
           sub->tenant);
    freeReplyObject(r);
    subs_unref(sub);
    return 0;
}

/* Custom headers that usually carry credentials; their values are not printed. */
static bool header_is_credential(const char *name)
{
    static const char *const words[] = {"auth",   "token",     "secret",     "key",    "password",
                                        "cookie", "signature", "credential", "session"};
    char lower[160];
    size_t i = 0;
    for (; name[i] && i + 1 < sizeof(lower); i++)
        lower[i] = (char)tolower((unsigned char)name[i]);
    lower[i] = '\0';
    for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++)
        if (strstr(lower, words[w]))
            return true;
    return false;
}

/*
 * Replaces each secret with its prefix (enough to tell the kind of key) and
 * the values of credential-like custom headers, unless --show-secrets.
 */
static char *redact_doc(const char *doc, size_t len)
{
    cJSON *root = cJSON_ParseWithLength(doc, len), *secrets, *headers;
    char *out;
    if (!root)
        return NULL;
    secrets = cJSON_GetObjectItemCaseSensitive(root, "secrets");
    for (cJSON *s = secrets ? secrets->child : NULL; s; s = s->next) {
        if (cJSON_IsString(s)) {
            char masked[32];
            const char *us = strchr(s->valuestring, '_');
            size_t keep = us ? (size_t)(us - s->valuestring) + 1 : 0;
            snprintf(masked, sizeof(masked), "%.*s****", (int)(keep < 8 ? keep : 8),
                     s->valuestring);
            cJSON_SetValuestring(s, masked);
        }
    }
    headers = cJSON_GetObjectItemCaseSensitive(root, "headers");
    for (cJSON *h = headers ? headers->child : NULL; h; h = h->next) {
        if (cJSON_IsString(h) && header_is_credential(h->string)) {
            /* Keep an auth scheme word ("Bearer ****") so the header stays recognisable. */
            char masked[64];
            const char *sp = strchr(h->valuestring, ' ');
            int keep = sp && sp - h->valuestring < 16 ? (int)(sp - h->valuestring) + 1 : 0;
            snprintf(masked, sizeof(masked), "%.*s****", keep, h->valuestring);
            cJSON_SetValuestring(h, masked);
        }
    }
    out = cJSON_Print(root);
    cJSON_Delete(root);
    return out;
}

static int cmd_get(struct admin *a, int argc, char **argv)
{
    redisReply *r;
    int rc;
    if (argc != 2) {
        subs_usage(stderr);
        return 2;
    }
    if ((rc = admin_redis(&a->ctx)))
        return rc;
    r = admin_command(&a->ctx, "GET herald:sub:%s", argv[1]);
    if (!r)
        return 1;
    if (r->type != REDIS_REPLY_STRING) {
        fprintf(stderr, "herald: no subscription \"%s\"\n", argv[1]);
        freeReplyObject(r);
        return 1;
    }
    if (a->show_secrets) {
        printf("%s\n", r->str);
    } else {
        char *red = redact_doc(r->str, r->len);
        printf("%s\n", red ? red : "(unreadable document)");
        free(red);
    }
    freeReplyObject(r);
    return 0;
}

static void print_row(struct admin *a, const char *doc, size_t len)
{
    cJSON *root = cJSON_ParseWithLength(doc, len);
    const cJSON *id, *tenant, *status, *url, *events;
    char evs[256] = "";
    size_t pos = 0;

    if (a->json) {
        char *red = redact_doc(doc, len);
        cJSON *c = red ? cJSON_Parse(red) : NULL;
        char *line = c ? cJSON_PrintUnformatted(c) : NULL;
        printf("%s\n", line ? line : "{}");
        free(line);
        cJSON_Delete(c);
        free(red);
        cJSON_Delete(root);
        return;
    }
    id = cJSON_GetObjectItemCaseSensitive(root, "id");
    tenant = cJSON_GetObjectItemCaseSensitive(root, "tenant");
    status = cJSON_GetObjectItemCaseSensitive(root, "status");
    url = cJSON_GetObjectItemCaseSensitive(root, "url");
    events = cJSON_GetObjectItemCaseSensitive(root, "events");
    for (const cJSON *e = events ? events->child : NULL; e && pos < sizeof(evs); e = e->next)
        if (cJSON_IsString(e))
            pos += (size_t)snprintf(evs + pos, sizeof(evs) - pos, "%s%s", pos ? "," : "",
                                    e->valuestring);
    printf("%-24s %-16s %-8s %-40s %s\n", cJSON_IsString(id) ? id->valuestring : "?",
           cJSON_IsString(tenant) ? tenant->valuestring : "?",
           cJSON_IsString(status) ? status->valuestring : "active",
           cJSON_IsString(url) ? url->valuestring : "?", evs);
    cJSON_Delete(root);
}

static int cmd_list(struct admin *a)
{
    redisReply *ids = NULL, *r;
    int rc;
    if ((rc = admin_redis(&a->ctx)))
        return rc;
    if (!a->json)
        printf("%-24s %-16s %-8s %-40s %s\n", "ID", "TENANT", "STATUS", "URL", "EVENTS");
    if (a->tenant) {
        ids = admin_command(&a->ctx, "SMEMBERS herald:tenant:%s", a->tenant);
        if (!ids)
            return 1;
        for (size_t i = 0; i < ids->elements; i++) {
            r = admin_command(&a->ctx, "GET herald:sub:%s", ids->element[i]->str);
            if (r && r->type == REDIS_REPLY_STRING)
                print_row(a, r->str, r->len);
            freeReplyObject(r);
        }
        freeReplyObject(ids);
        return 0;
    }
    {
        char cursor[32] = "0";
        do {
            r = admin_command(&a->ctx, "SCAN %s MATCH herald:sub:* COUNT 500", cursor);
            if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
                freeReplyObject(r);
                return 1;
            }
            snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
            for (size_t i = 0; i < r->element[1]->elements; i++) {
                redisReply *d = admin_command(&a->ctx, "GET %s", r->element[1]->element[i]->str);
                if (d && d->type == REDIS_REPLY_STRING)
                    print_row(a, d->str, d->len);
                freeReplyObject(d);
            }
            freeReplyObject(r);
        } while (strcmp(cursor, "0") != 0);
    }
    return 0;
}

static int cmd_delete(struct admin *a, int argc, char **argv)
{
    redisReply *r;
    char key[200];
    int rc;
    if (argc != 2) {
        subs_usage(stderr);
        return 2;
    }
    if ((rc = admin_redis(&a->ctx)))
        return rc;
    snprintf(key, sizeof(key), "herald:sub:%s", argv[1]);
    r = admin_command(&a->ctx, "EVAL %s 1 %s %s", delete_script, key, argv[1]);
    if (!r)
        return 1;
    if (r->integer == 0) {
        fprintf(stderr, "herald: no subscription \"%s\"\n", argv[1]);
        freeReplyObject(r);
        return 1;
    }
    printf("deleted subscription \"%s\"\n", argv[1]);
    freeReplyObject(r);
    return 0;
}

int admin_subs(int argc, char **argv, char **envp)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"redis", required_argument, NULL, 'r'},
                                         {"tenant", required_argument, NULL, 't'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"show-secrets", no_argument, NULL, 's'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct admin a;
    const char *config_path = NULL, *redis_url = NULL;
    int c, rc;

    memset(&a, 0, sizeof(a));
    /*
     * Options may come before or after the command word: "+" stops the first
     * scan at the command, and a second scan (optind = 0 makes glibc forget the
     * "+" mode) reads the options that follow it.
     */
    for (int pass = 0; pass < 2; pass++) {
        optind = 0;
        while ((c = getopt_long(argc, argv, pass ? "c:r:t:jsh" : "+c:r:t:jsh", opts, NULL)) != -1) {
            switch (c) {
            case 'c':
                config_path = optarg;
                break;
            case 'r':
                redis_url = optarg;
                break;
            case 't':
                a.tenant = optarg;
                break;
            case 'j':
                a.json = true;
                break;
            case 's':
                a.show_secrets = true;
                break;
            case 'h':
                subs_usage(stdout);
                return 0;
            default:
                subs_usage(stderr);
                return 2;
            }
        }
        if (pass == 0) {
            argc -= optind - 1;
            argv += optind - 1; /* argv[0] is now the word before the command */
            if (argc < 2) {
                subs_usage(stderr);
                return 2;
            }
            argc--;
            argv++;
        }
    }
    /* After the second scan GNU getopt has moved the positional arguments to the end. */
    {
        int npos = argc - optind;
        for (int i = 0; i < npos; i++)
            argv[1 + i] = argv[optind + i];
        argc = 1 + npos;
    }
    if ((rc = admin_ctx_init(&a.ctx, config_path, redis_url, envp)))
        return rc;
    rc = 2;
    if (!strcmp(argv[0], "put"))
        rc = cmd_put(&a, argc, argv);
    else if (!strcmp(argv[0], "get"))
        rc = cmd_get(&a, argc, argv);
    else if (!strcmp(argv[0], "list") && argc == 1)
        rc = cmd_list(&a);
    else if (!strcmp(argv[0], "delete"))
        rc = cmd_delete(&a, argc, argv);
    else
        subs_usage(stderr);
    admin_ctx_release(&a.ctx);
    return rc;
}

/* --- herald attempts ---------------------------------------------------------------- */

static void attempts_usage(FILE *out)
{
    fprintf(out, "usage: herald attempts [--config FILE] [--redis URL] SUBSCRIPTION [--failed] "
                 "[--limit N] [--json]\n"
                 "  newest first, from the Redis stream herald:attempts:SUBSCRIPTION\n");
}

static const char *json_str(const cJSON *o, const char *name)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(m) ? m->valuestring : "";
}

static double json_num(const cJSON *o, const char *name)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(m) ? m->valuedouble : 0;
}

/* Prints one stream entry; returns true when it was printed (it passed the filter). */
static bool print_attempt(const redisReply *entry, bool failed_only, bool json)
{
    const redisReply *fields;
    const char *record = NULL;
    cJSON *o;
    bool failed;

    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2)
        return false;
    fields = entry->element[1];
    for (size_t i = 0; i + 1 < fields->elements; i += 2)
        if (strcmp(fields->element[i]->str, "record") == 0)
            record = fields->element[i + 1]->str;
    if (!record || !(o = cJSON_Parse(record)))
        return false;
    failed = strcmp(json_str(o, "outcome"), "delivered") != 0;
    if (failed_only && !failed) {
        cJSON_Delete(o);
        return false;
    }
    if (json) {
        cJSON_AddStringToObject(o, "stream_id", entry->element[0]->str);
        char *line = cJSON_PrintUnformatted(o);
        printf("%s\n", line ? line : "{}");
        free(line);
    } else {
        printf("%-16s %-24s %-20s %3d %4d %-13s %8.1fms %s\n", entry->element[0]->str,
               json_str(o, "sent_at"), json_str(o, "event_id"), (int)json_num(o, "attempt"),
               (int)json_num(o, "status"), json_str(o, "outcome"), json_num(o, "latency_ms"),
               json_str(o, "error"));
    }
    cJSON_Delete(o);
    return true;
}

int admin_attempts(int argc, char **argv, char **envp)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"redis", required_argument, NULL, 'r'},
                                         {"failed", no_argument, NULL, 'f'},
                                         {"limit", required_argument, NULL, 'n'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct admin_ctx a;
    const char *config_path = NULL, *redis_url = NULL, *sub_id;
    bool failed_only = false, json = false;
    long limit = 20, shown = 0;
    char start[64] = "+";
    int c, rc;

    optind = 0;
    while ((c = getopt_long(argc, argv, "c:r:fn:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config_path = optarg;
            break;
        case 'r':
            redis_url = optarg;
            break;
        case 'f':
            failed_only = true;
            break;
        case 'j':
            json = true;
            break;
        case 'n':
            limit = strtol(optarg, NULL, 10);
            if (limit < 1 || limit > 100000) {
                fprintf(stderr, "herald: --limit must be 1 to 100000\n");
                return 2;
            }
            break;
        case 'h':
            attempts_usage(stdout);
            return 0;
        default:
            attempts_usage(stderr);
            return 2;
        }
    }
    if (optind + 1 != argc) {
        attempts_usage(stderr);
        return 2;
    }
    sub_id = argv[optind];
    if ((rc = admin_ctx_init(&a, config_path, redis_url, envp)))
        return rc;
    if ((rc = admin_redis(&a)))
        goto out;
    if (!json)
        printf("%-16s %-24s %-20s %3s %4s %-13s %10s %s\n", "ID", "SENT_AT", "EVENT", "TRY", "CODE",
               "OUTCOME", "LATENCY", "ERROR");
    /* Page backwards through the stream until enough entries pass the filter. */
    while (shown < limit) {
        redisReply *r =
            admin_command(&a, "XREVRANGE herald:attempts:%s %s - COUNT %d", sub_id, start, 200);
        size_t n;
        if (!r) {
            rc = 1;
            goto out;
        }
        n = r->elements;
        for (size_t i = 0; i < n && shown < limit; i++)
            if (print_attempt(r->element[i], failed_only, json))
                shown++;
        if (n > 0) {
            /* Next page: strictly before the last id seen ("(" exclusive ranges need Redis 6.2). */
            snprintf(start, sizeof(start), "(%s", r->element[n - 1]->element[0]->str);
        }
        freeReplyObject(r);
        if (n < 200)
            break;
    }
    rc = 0;
out:
    admin_ctx_release(&a);
    return rc;
}
