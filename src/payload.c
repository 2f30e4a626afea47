/*
 * Payload modes: the body a subscription asked for, made from the event bytes.
 *
 * The compact mode owns a small strict JSON parser (RFC 8259) and a serializer
 * that together reproduce JavaScript's JSON.stringify(JSON.parse(text)) byte for
 * byte, so a receiver that verifies a signature over the re-serialized body
 * gets exactly the bytes herald signed. cJSON is not used here because its
 * number and string printing differ from JavaScript's.
 *
 * Parsing writes a flat tape: one node per value and per object key, holding
 * the value's byte span in the input. Serializing walks the tape, so no value
 * is parsed twice; object members are reordered only when JavaScript would
 * (integer-like keys, duplicate keys). Recursion is capped at
 * PAYLOAD_MAX_DEPTH nested containers and every scratch array is bounded by
 * the input size; there is no per-token allocation.
 *
 * Where JSON.parse has no byte-level answer, herald chooses:
 *  - Invalid UTF-8 (overlong forms, encoded surrogates, code points past
 *    U+10FFFF, truncated sequences) is HERALD_EPARSE. RFC 8259 requires UTF-8,
 *    and decoding with U+FFFD replacement would silently change the event.
 *  - Escaped lone surrogates (\ud800 without a low half) are accepted, as
 *    JSON.parse accepts them, and printed as lowercase \udxxx escapes, as the
 *    well-formed JSON.stringify of node >= 12 does.
 *  - Numbers go through strtod and snprintf, which assumes the C locale for
 *    LC_NUMERIC; herald never calls setlocale.
 */
#include "herald/payload.h"
#include "herald/err.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deep enough for any real event, shallow enough that two recursive passes of
 * small frames cannot exhaust a thread stack on hostile input. */
#define PAYLOAD_MAX_DEPTH 512

/* Objects up to this many members are checked for duplicate keys pairwise;
 * larger ones are sorted, which stays O(n log n) on hostile input. */
#define PAIRWISE_MAX 16

enum node_type { T_NULL, T_TRUE, T_FALSE, T_NUMBER, T_STRING, T_ARRAY, T_OBJECT };

/* String node: contains backslash escapes, so it is not printed verbatim. */
#define F_ESCAPED 0x01
/* Number node: an integer literal of at most 15 digits, exact as a double and
 * printed by JavaScript exactly as written (save "-0"). */
#define F_SHORTINT 0x02

struct node {
    uint32_t start; /* first byte of the value in the input */
    uint32_t end;   /* one past its last byte */
    uint32_t next;  /* tape index just past this value's subtree */
    uint32_t aux;   /* containers: member/element count; escaped keys: offset in keys */
    uint32_t aux2;  /* escaped keys: decoded length */
    uint8_t type;
    uint8_t flags;
};

struct parser {
    const unsigned char *s;
    size_t len;
    size_t pos;
    int record_depth; /* values nested deeper than this are validated, not recorded */
    struct node *nodes;
    uint32_t nnodes;
    uint32_t capnodes;
    struct buf keys; /* escaped object keys, decoded, so keys compare as JavaScript strings */
};

/* One object member while its print order is decided. */
struct member {
    const unsigned char *key; /* decoded key bytes */
    uint32_t klen;
    uint32_t pos;   /* ordinal in the input */
    uint32_t knode; /* tape index of the key (first occurrence) */
    uint32_t vnode; /* tape index of the value to print (last occurrence) */
    uint32_t index; /* numeric value when is_index */
    uint8_t is_index;
    uint8_t dead; /* a later duplicate, folded into the first occurrence */
};

struct writer {
    const unsigned char *s;
    const struct node *nodes;
    const unsigned char *keys;
    struct buf *out;
    struct member *members; /* used as a stack: one frame per open object */
    uint32_t nmembers;
    uint32_t capmembers;
    struct buf numtmp; /* NUL-terminated copy of a long number for strtod */
};

/* Bytes that may stand unescaped in a JSON string and need no decoding:
 * printable ASCII (DEL included, as JSON allows) except '"' and '\\'. */
static inline bool plain_byte(unsigned char c)
{
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

static const char hexdigits[] = "0123456789abcdef";

int payload_mode_parse(const char *name, enum payload_mode *out)
{
    if (!name || !out)
        return HERALD_EINVAL;
#define XX(id, str)                                                                                \
    if (strcmp(name, str) == 0) {                                                                  \
        *out = PAYLOAD_##id;                                                                       \
        return 0;                                                                                  \
    }
    PAYLOAD_MODE_MAP(XX)
#undef XX
    return HERALD_EINVAL;
}

const char *payload_mode_name(enum payload_mode mode)
{
    switch (mode) {
#define XX(id, str)                                                                                \
    case PAYLOAD_##id:                                                                             \
        return str;
        PAYLOAD_MODE_MAP(XX)
#undef XX
    }
    return "unknown";
}

/* ---- parsing ------------------------------------------------------------ */

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The code unit of the four hex digits at p (already validated). */
static unsigned hex4(const unsigned char *p)
{
    return (unsigned)hexval(p[0]) << 12 | (unsigned)hexval(p[1]) << 8 |
           (unsigned)hexval(p[2]) << 4 | (unsigned)hexval(p[3]);
}

/* Length of the well-formed UTF-8 sequence at p (Unicode Table 3-7), or 0. */
static size_t utf8_len(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0], lo = 0x80, hi = 0xbf;
    size_t n;

    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4;
    else
        return 0;
    if (avail < n)
        return 0;
    /* The second byte's range excludes overlong forms, surrogates and > U+10FFFF. */
    if (c == 0xe0)
        lo = 0xa0;
    else if (c == 0xed)
        hi = 0x9f;
    else if (c == 0xf0)
        lo = 0x90;
    else if (c == 0xf4)
        hi = 0x8f;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return n;
}

static void skip_ws(struct parser *p)
{
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

static int node_push(struct parser *p, uint32_t *idx)
{
    if (p->nnodes == p->capnodes) {
        /* Every node covers at least one input byte, so the tape never needs
         * more than len + 1 nodes; doubling from a fraction of that keeps
         * small events cheap. */
        size_t ncap = p->capnodes ? (size_t)p->capnodes * 2 : p->len / 8 + 16;
        struct node *nn;

        if (ncap > p->len + 1)
            ncap = p->len + 1;
        if (ncap <= p->capnodes)
            return HERALD_EPARSE; /* cannot happen for a well-formed tape */
        nn = realloc(p->nodes, ncap * sizeof(*nn));
        if (!nn)
            return HERALD_ENOMEM;
        p->nodes = nn;
        p->capnodes = (uint32_t)ncap;
    }
    *idx = p->nnodes++;
    memset(&p->nodes[*idx], 0, sizeof(p->nodes[*idx]));
    return 0;
}

static int parse_string(struct parser *p, uint8_t *flags)
{
    const unsigned char *s = p->s;
    size_t pos = p->pos + 1, len = p->len;

    for (;;) {
        unsigned char c;

        while (pos < len && plain_byte(s[pos]))
            pos++;
        if (pos >= len)
            return HERALD_EPARSE;
        c = s[pos];
        if (c == '"') {
            p->pos = pos + 1;
            return 0;
        }
        if (c == '\\') {
            if (pos + 1 >= len)
                return HERALD_EPARSE;
            switch (s[pos + 1]) {
            case '"':
            case '\\':
            case '/':
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't':
                pos += 2;
                break;
            case 'u':
                if (len - pos < 6 || hexval(s[pos + 2]) < 0 || hexval(s[pos + 3]) < 0 ||
                    hexval(s[pos + 4]) < 0 || hexval(s[pos + 5]) < 0)
                    return HERALD_EPARSE;
                pos += 6;
                break;
            default:
                return HERALD_EPARSE;
            }
            *flags |= F_ESCAPED;
        } else if (c < 0x20) {
            return HERALD_EPARSE;
        } else {
            size_t n = utf8_len(s + pos, len - pos);
            if (!n)
                return HERALD_EPARSE;
            pos += n;
        }
    }
}

/* Decodes the escape at s[*i] (a backslash) into a code point; a \u escape of
 * a high surrogate followed by one of a low surrogate is combined, a lone
 * surrogate comes back as itself. */
static unsigned decode_escape(const unsigned char *s, size_t *i, size_t stop)
{
    unsigned char e = s[*i + 1];
    unsigned cu;

    *i += 2;
    switch (e) {
    case 'b':
        return '\b';
    case 'f':
        return '\f';
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 't':
        return '\t';
    case 'u':
        break;
    default:
        return e; /* '"', '\\', '/' */
    }
    cu = hex4(s + *i);
    *i += 4;
    if (cu >= 0xd800 && cu <= 0xdbff && stop - *i >= 6 && s[*i] == '\\' && s[*i + 1] == 'u') {
        unsigned lo = hex4(s + *i + 2);
        if (lo >= 0xdc00 && lo <= 0xdfff) {
            *i += 6;
            return 0x10000 + ((cu - 0xd800) << 10) + (lo - 0xdc00);
        }
    }
    return cu;
}

/* UTF-8 for cp; lone surrogates get the generalized three-byte form so that
 * decoded keys compare equal exactly when their UTF-16 forms do. */
static size_t utf8_put(unsigned cp, unsigned char *d)
{
    if (cp < 0x80) {
        d[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (unsigned char)(0xc0 | cp >> 6);
        d[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (unsigned char)(0xe0 | cp >> 12);
        d[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        d[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    d[0] = (unsigned char)(0xf0 | cp >> 18);
    d[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
    d[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
    d[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Decodes an escaped key (the node's span, quotes included) into p->keys. */
static int decode_key(struct parser *p, struct node *n)
{
    const unsigned char *s = p->s;
    size_t i = n->start + 1, stop = n->end - 1, ofs = p->keys.len;
    int rc = 0;

    while (i < stop && !rc) {
        size_t run = i;
        while (i < stop && s[i] != '\\')
            i++;
        rc = buf_append(&p->keys, s + run, i - run);
        if (i < stop && !rc) {
            unsigned char u8[4];
            rc = buf_append(&p->keys, u8, utf8_put(decode_escape(s, &i, stop), u8));
        }
    }
    n->aux = (uint32_t)ofs;
    n->aux2 = (uint32_t)(p->keys.len - ofs);
    return rc;
}

static int parse_number(struct parser *p, uint8_t *flags)
{
    const unsigned char *s = p->s;
    size_t pos = p->pos, len = p->len, digits0;
    bool integer = true;

    if (s[pos] == '-')
        pos++;
    digits0 = pos;
    if (pos < len && s[pos] == '0') {
        pos++;
    } else if (pos < len && s[pos] >= '1' && s[pos] <= '9') {
        while (pos < len && is_digit(s[pos]))
            pos++;
    } else {
        return HERALD_EPARSE;
    }
    if (pos - digits0 > 15)
        integer = false;
    if (pos < len && s[pos] == '.') {
        integer = false;
        if (++pos >= len || !is_digit(s[pos]))
            return HERALD_EPARSE;
        while (pos < len && is_digit(s[pos]))
            pos++;
    }
    if (pos < len && (s[pos] == 'e' || s[pos] == 'E')) {
        integer = false;
        pos++;
        if (pos < len && (s[pos] == '+' || s[pos] == '-'))
            pos++;
        if (pos >= len || !is_digit(s[pos]))
            return HERALD_EPARSE;
        while (pos < len && is_digit(s[pos]))
            pos++;
    }
    if (integer)
        *flags |= F_SHORTINT;
    p->pos = pos;
    return 0;
}

static int parse_literal(struct parser *p, const char *lit, size_t n)
{
    if (p->len - p->pos < n || memcmp(p->s + p->pos, lit, n) != 0)
        return HERALD_EPARSE;
    p->pos += n;
    return 0;
}

static int parse_value(struct parser *p, int depth);

static int parse_array(struct parser *p, int depth, uint32_t *count)
{
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == ']') {
        p->pos++;
        return 0;
    }
    for (;;) {
        int rc = parse_value(p, depth + 1);
        if (rc)
            return rc;
        (*count)++;
        skip_ws(p);
        if (p->pos >= p->len)
            return HERALD_EPARSE;
        if (p->s[p->pos] == ']') {
            p->pos++;
            return 0;
        }
        if (p->s[p->pos] != ',')
            return HERALD_EPARSE;
        p->pos++;
    }
}

static int parse_object(struct parser *p, int depth, uint32_t *count)
{
    bool rec = depth + 1 <= p->record_depth;

    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == '}') {
        p->pos++;
        return 0;
    }
    for (;;) {
        uint8_t kflags = 0;
        uint32_t kidx = 0;
        size_t kstart;
        int rc;

        skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != '"')
            return HERALD_EPARSE;
        kstart = p->pos;
        if (rec && (rc = node_push(p, &kidx)))
            return rc;
        if ((rc = parse_string(p, &kflags)))
            return rc;
        if (rec) {
            struct node *k = &p->nodes[kidx];
            k->type = T_STRING;
            k->flags = kflags;
            k->start = (uint32_t)kstart;
            k->end = (uint32_t)p->pos;
            k->next = kidx + 1;
            if ((kflags & F_ESCAPED) && (rc = decode_key(p, k)))
                return rc;
        }
        skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != ':')
            return HERALD_EPARSE;
        p->pos++;
        if ((rc = parse_value(p, depth + 1)))
            return rc;
        (*count)++;
        skip_ws(p);
        if (p->pos >= p->len)
            return HERALD_EPARSE;
        if (p->s[p->pos] == '}') {
            p->pos++;
            return 0;
        }
        if (p->s[p->pos] != ',')
            return HERALD_EPARSE;
        p->pos++;
    }
}

/* Parses one value at nesting depth (0 for the document itself); records it
 * on the tape when depth <= record_depth. */
static int parse_value(struct parser *p, int depth)
{
    bool rec = depth <= p->record_depth;
    uint32_t idx = 0, count = 0;
    uint8_t type, flags = 0;
    size_t start;
    int rc;

    skip_ws(p);
    if (p->pos >= p->len)
        return HERALD_EPARSE;
    start = p->pos;
    if (rec && (rc = node_push(p, &idx)))
        return rc;
    switch (p->s[p->pos]) {
    case '{':
        if (depth >= PAYLOAD_MAX_DEPTH)
            return HERALD_EPARSE;
        type = T_OBJECT;
        rc = parse_object(p, depth, &count);
        break;
    case '[':
        if (depth >= PAYLOAD_MAX_DEPTH)
            return HERALD_EPARSE;
        type = T_ARRAY;
        rc = parse_array(p, depth, &count);
        break;
    case '"':
        type = T_STRING;
        rc = parse_string(p, &flags);
        break;
    case 't':
        type = T_TRUE;
        rc = parse_literal(p, "true", 4);
        break;
    case 'f':
        type = T_FALSE;
        rc = parse_literal(p, "false", 5);
        break;
    case 'n':
        type = T_NULL;
        rc = parse_literal(p, "null", 4);
        break;
    default:
        type = T_NUMBER;
        rc = parse_number(p, &flags);
        break;
    }
    if (rc)
        return rc;
    if (rec) {
        /* Re-fetched: parsing the children may have moved the tape. */
        struct node *n = &p->nodes[idx];
        n->start = (uint32_t)start;
        n->end = (uint32_t)p->pos;
        n->next = p->nnodes;
        n->aux = count;
        n->type = type;
        n->flags = flags;
    }
    return 0;
}

static void parser_init(struct parser *p, const char *in, size_t len, int record_depth)
{
    memset(p, 0, sizeof(*p));
    p->s = (const unsigned char *)in;
    p->len = len;
    p->record_depth = record_depth;
    /* A decoded key is never longer than its escaped source. */
    buf_init(&p->keys, len);
}

static void parser_release(struct parser *p)
{
    free(p->nodes);
    p->nodes = NULL;
    buf_release(&p->keys);
}

/* Parses the whole input as one JSON text: nothing but whitespace may follow. */
static int parse_document(struct parser *p)
{
    int rc = parse_value(p, 0);
    if (rc)
        return rc;
    skip_ws(p);
    return p->pos == p->len ? 0 : HERALD_EPARSE;
}

/* The bytes a key compares by: its source when unescaped, else its decoding. */
static const unsigned char *key_bytes(const struct node *k, const unsigned char *s,
                                      const unsigned char *keys, uint32_t *klen)
{
    if (k->flags & F_ESCAPED) {
        *klen = k->aux2;
        return keys + k->aux;
    }
    *klen = k->end - k->start - 2;
    return s + k->start + 1;
}

/* ---- numbers, the way ECMAScript Number::toString prints them ----------- */

static bool is_pow2(double x)
{
    int e;
    return frexp(x, &e) == 0.5;
}

/*
 * Fills d with the k significant digits of x (x > 0, finite) rounded to
 * nearest, sets *e to the decimal exponent of d[0], and says whether they
 * read back as x. glibc's printf and strtod are exact, so this is the
 * round-trip test of the shortest-digits search.
 *
 * When the nearest digits miss and x is a power of two they fell below, the
 * next k-digit value up is tried as well: a power of two's rounding interval
 * reaches twice as far above it as below, so that farther neighbour can read
 * back as x while the nearer one does not, and JavaScript prints it.
 */
static bool digits_k(double x, int k, char *d, int *e)
{
    char txt[40];
    int i, n;

    snprintf(txt, sizeof(txt), "%.*e", k - 1, x);
    /* "D.DDDe+XX", or "De+XX" when k is 1. */
    d[0] = txt[0];
    for (i = 1; i < k; i++)
        d[i] = txt[i + 1];
    *e = (int)strtol(txt + (k > 1 ? k + 2 : 2), NULL, 10);
    {
        double v = strtod(txt, NULL);
        if (v == x)
            return true;
        if (v > x || !is_pow2(x))
            return false;
    }
    for (i = k - 1; i >= 0; i--) {
        if (d[i] != '9') {
            d[i]++;
            break;
        }
        d[i] = '0';
    }
    if (i < 0) {
        d[0] = '1';
        (*e)++;
    }
    n = 0;
    txt[n++] = d[0];
    if (k > 1) {
        txt[n++] = '.';
        memcpy(txt + n, d + 1, (size_t)k - 1);
        n += k - 1;
    }
    snprintf(txt + n, sizeof(txt) - (size_t)n, "e%d", *e);
    return strtod(txt, NULL) == x;
}

/*
 * The fewest significant digits that read back as x, nearest x among those:
 * what V8's shortest mode yields. Whether some k-digit value reads back as x
 * is monotone in k, so k is found by bisection. The source literal, with
 * hint significant digits, is itself such a value, which bounds the search;
 * and since most producers already print shortest digits, hint - 1 is tried
 * first so that the usual answer costs two probes.
 */
static int shortest_digits(double x, int hint, char *d, int *exp10)
{
    char cand[17];
    int lo = 1, hi = hint < 1 || hint > 17 ? 17 : hint, best = 0, ce;

    if (hi > 1) {
        if (digits_k(x, hi - 1, cand, &ce)) {
            hi--;
            best = hi;
            memcpy(d, cand, (size_t)hi);
            *exp10 = ce;
        } else {
            lo = hi;
        }
    }
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (digits_k(x, mid, cand, &ce)) {
            hi = mid;
            best = mid;
            memcpy(d, cand, (size_t)mid);
            *exp10 = ce;
        } else {
            lo = mid + 1;
        }
    }
    if (best != hi)
        digits_k(x, hi, d, exp10);
    while (hi > 1 && d[hi - 1] == '0')
        hi--;
    return hi;
}

/* Significant digits of a number literal (leading and trailing zeros of the
 * digit sequence left out), ignoring any exponent. */
static int literal_digits(const char *tok, size_t len)
{
    size_t first = 0, last = 0, n = 0;

    for (size_t i = 0; i < len && tok[i] != 'e' && tok[i] != 'E'; i++) {
        if (!is_digit((unsigned char)tok[i]))
            continue;
        n++;
        if (tok[i] != '0') {
            if (!first)
                first = n;
            last = n;
        }
    }
    return first ? (last - first + 1 > 17 ? 17 : (int)(last - first + 1)) : 0;
}

/* Number::toString(x) into dst (at least 32 bytes), with JSON.stringify's
 * "null" for the infinities a huge literal parses to; hint is the literal's
 * significant digit count (0 if unknown). */
static size_t format_number(double x, int hint, char *dst)
{
    char d[17];
    size_t o = 0;
    int k, n, e;

    if (!isfinite(x)) {
        memcpy(dst, "null", 4);
        return 4;
    }
    if (x == 0) { /* -0 too */
        dst[0] = '0';
        return 1;
    }
    if (x < 0) {
        dst[o++] = '-';
        x = -x;
    }
    k = shortest_digits(x, hint, d, &e);
    n = e + 1; /* x = 0.d * 10^n in the specification's terms */
    if (k <= n && n <= 21) {
        memcpy(dst + o, d, (size_t)k);
        o += (size_t)k;
        memset(dst + o, '0', (size_t)(n - k));
        o += (size_t)(n - k);
    } else if (0 < n && n <= 21) {
        memcpy(dst + o, d, (size_t)n);
        o += (size_t)n;
        dst[o++] = '.';
        memcpy(dst + o, d + n, (size_t)(k - n));
        o += (size_t)(k - n);
    } else if (-6 < n && n <= 0) {
        dst[o++] = '0';
        dst[o++] = '.';
        memset(dst + o, '0', (size_t)-n);
        o += (size_t)-n;
        memcpy(dst + o, d, (size_t)k);
        o += (size_t)k;
    } else {
        dst[o++] = d[0];
        if (k > 1) {
            dst[o++] = '.';
            memcpy(dst + o, d + 1, (size_t)k - 1);
            o += (size_t)k - 1;
        }
        o += (size_t)sprintf(dst + o, "e%c%d", n - 1 < 0 ? '-' : '+', abs(n - 1));
    }
    return o;
}

/* ---- serializing, the way JSON.stringify does --------------------------- */

/* One decoded code point as JSON.stringify prints it inside a string. */
static int emit_codepoint(struct buf *out, unsigned cp)
{
    unsigned char u8[6];

    switch (cp) {
    case '"':
        return buf_append(out, "\\\"", 2);
    case '\\':
        return buf_append(out, "\\\\", 2);
    case '\b':
        return buf_append(out, "\\b", 2);
    case '\f':
        return buf_append(out, "\\f", 2);
    case '\n':
        return buf_append(out, "\\n", 2);
    case '\r':
        return buf_append(out, "\\r", 2);
    case '\t':
        return buf_append(out, "\\t", 2);
    default:
        break;
    }
    if (cp < 0x20 || (cp >= 0xd800 && cp <= 0xdfff)) {
        u8[0] = '\\';
        u8[1] = 'u';
        u8[2] = (unsigned char)hexdigits[cp >> 12 & 0xf];
        u8[3] = (unsigned char)hexdigits[cp >> 8 & 0xf];
        u8[4] = (unsigned char)hexdigits[cp >> 4 & 0xf];
        u8[5] = (unsigned char)hexdigits[cp & 0xf];
        return buf_append(out, u8, 6);
    }
    return buf_append(out, u8, utf8_put(cp, u8));
}

/* Raw bytes (valid UTF-8) as the inside of a JSON.stringify string. */
static int emit_escaped_raw(struct buf *out, const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        size_t run = i;
        int rc;

        while (i < n && s[i] >= 0x20 && s[i] != '"' && s[i] != '\\')
            i++;
        if ((rc = buf_append(out, s + run, i - run)))
            return rc;
        if (i < n && (rc = emit_codepoint(out, s[i++])))
            return rc;
    }
    return 0;
}

static int emit_string(struct writer *w, const struct node *n)
{
    const unsigned char *s = w->s;
    size_t i = n->start + 1, stop = n->end - 1;
    int rc;

    /* Unescaped source bytes are printable ASCII or UTF-8, which
     * JSON.stringify prints as they are: the token is already its output. */
    if (!(n->flags & F_ESCAPED))
        return buf_append(w->out, s + n->start, n->end - n->start);
    if ((rc = buf_appendc(w->out, '"')))
        return rc;
    while (i < stop) {
        size_t run = i;
        while (i < stop && s[i] != '\\')
            i++;
        if ((rc = buf_append(w->out, s + run, i - run)))
            return rc;
        if (i < stop && (rc = emit_codepoint(w->out, decode_escape(s, &i, stop))))
            return rc;
    }
    return buf_appendc(w->out, '"');
}

static int emit_number(struct writer *w, const struct node *n)
{
    const char *tok = (const char *)w->s + n->start;
    size_t len = n->end - n->start;
    char small[64], txt[32];
    const char *z = small;
    int rc;

    if (n->flags & F_SHORTINT) {
        if (len == 2 && tok[0] == '-' && tok[1] == '0')
            return buf_appendc(w->out, '0');
        return buf_append(w->out, tok, len);
    }
    /* strtod needs a terminated string and the input is not one. */
    if (len < sizeof(small)) {
        memcpy(small, tok, len);
        small[len] = '\0';
    } else {
        buf_reset(&w->numtmp);
        if ((rc = buf_append(&w->numtmp, tok, len)))
            return rc;
        z = w->numtmp.data;
    }
    return buf_append(w->out, txt, format_number(strtod(z, NULL), literal_digits(tok, len), txt));
}

static bool same_key(const struct member *a, const struct member *b)
{
    return a->klen == b->klen && memcmp(a->key, b->key, a->klen) == 0;
}

static int cmp_key(const void *pa, const void *pb)
{
    const struct member *a = pa, *b = pb;
    int c = memcmp(a->key, b->key, a->klen < b->klen ? a->klen : b->klen);

    if (c)
        return c;
    if (a->klen != b->klen)
        return a->klen < b->klen ? -1 : 1;
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

/* JavaScript's own-key order: array-index keys ascending, then the other
 * keys in order of first insertion; folded duplicates go last, unprinted. */
static int cmp_order(const void *pa, const void *pb)
{
    const struct member *a = pa, *b = pb;

    if (a->dead != b->dead)
        return a->dead ? 1 : -1;
    if (a->is_index != b->is_index)
        return a->is_index ? -1 : 1;
    if (a->is_index)
        return a->index < b->index ? -1 : a->index > b->index;
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

/* An array index in ECMAScript's sense: the canonical decimal form of an
 * integer in [0, 2^32 - 2]. JavaScript enumerates these keys first. */
static bool array_index(const unsigned char *k, uint32_t n, uint32_t *out)
{
    uint64_t v = 0;

    if (n == 0 || n > 10 || (k[0] == '0' && n > 1))
        return false;
    for (uint32_t i = 0; i < n; i++) {
        if (!is_digit(k[i]))
            return false;
        v = v * 10 + (uint64_t)(k[i] - '0');
    }
    if (v > UINT32_MAX - 1)
        return false;
    *out = (uint32_t)v;
    return true;
}

static int emit_value(struct writer *w, uint32_t idx);

static int emit_object(struct writer *w, uint32_t idx)
{
    uint32_t cnt = w->nodes[idx].aux, base = w->nmembers, i = idx + 1;
    struct member *m;
    bool reorder = false, first = true;
    int rc;

    if (cnt == 0)
        return buf_append(w->out, "{}", 2);
    if (w->capmembers - base < cnt) {
        /* Frames nest, so the stack never holds more members than the tape. */
        size_t ncap = (size_t)base + cnt;
        struct member *nm;
        if (ncap < (size_t)w->capmembers * 2)
            ncap = (size_t)w->capmembers * 2;
        nm = realloc(w->members, ncap * sizeof(*nm));
        if (!nm)
            return HERALD_ENOMEM;
        w->members = nm;
        w->capmembers = (uint32_t)ncap;
    }
    m = w->members + base;
    for (uint32_t k = 0; k < cnt; k++) {
        m[k].key = key_bytes(&w->nodes[i], w->s, w->keys, &m[k].klen);
        m[k].pos = k;
        m[k].knode = i;
        m[k].vnode = i + 1;
        m[k].dead = 0;
        m[k].is_index = array_index(m[k].key, m[k].klen, &m[k].index);
        reorder |= m[k].is_index;
        i = w->nodes[i + 1].next;
    }
    /* A repeated key keeps its first position and takes its last value,
     * as JSON.parse's property assignment does. */
    if (cnt <= PAIRWISE_MAX) {
        for (uint32_t k = 1; k < cnt; k++) {
            for (uint32_t j = 0; j < k; j++) {
                if (!m[j].dead && same_key(&m[k], &m[j])) {
                    m[j].vnode = m[k].vnode;
                    m[k].dead = 1;
                    break;
                }
            }
        }
    } else {
        qsort(m, cnt, sizeof(*m), cmp_key);
        for (uint32_t k = 0; k < cnt;) {
            uint32_t j = k + 1;
            while (j < cnt && same_key(&m[k], &m[j]))
                m[j++].dead = 1;
            m[k].vnode = m[j - 1].vnode;
            k = j;
        }
        reorder = true;
    }
    if (reorder)
        qsort(m, cnt, sizeof(*m), cmp_order);
    w->nmembers = base + cnt;

    rc = buf_appendc(w->out, '{');
    for (uint32_t k = 0; k < cnt && !rc; k++) {
        /* A copy: printing a nested object may move the member stack. */
        struct member e = w->members[base + k];
        if (e.dead)
            continue;
        if (!first && (rc = buf_appendc(w->out, ',')))
            break;
        first = false;
        if ((rc = emit_string(w, &w->nodes[e.knode])) || (rc = buf_appendc(w->out, ':')))
            break;
        rc = emit_value(w, e.vnode);
    }
    w->nmembers = base;
    return rc ? rc : buf_appendc(w->out, '}');
}

static int emit_value(struct writer *w, uint32_t idx)
{
    const struct node *n = &w->nodes[idx];
    int rc;

    switch (n->type) {
    case T_NULL:
        return buf_append(w->out, "null", 4);
    case T_TRUE:
        return buf_append(w->out, "true", 4);
    case T_FALSE:
        return buf_append(w->out, "false", 5);
    case T_NUMBER:
        return emit_number(w, n);
    case T_STRING:
        return emit_string(w, n);
    case T_OBJECT:
        return emit_object(w, idx);
    default:
        break;
    }
    if ((rc = buf_appendc(w->out, '[')))
        return rc;
    for (uint32_t k = 0, i = idx + 1; k < n->aux; k++) {
        if ((k && (rc = buf_appendc(w->out, ','))) || (rc = emit_value(w, i)))
            return rc;
        i = w->nodes[i].next;
    }
    return buf_appendc(w->out, ']');
}

/* ---- the modes ---------------------------------------------------------- */

/* Offsets on the tape are 32-bit; no event comes close. */
static int check_input(const char *in, size_t len, const struct buf *out)
{
    if ((!in && len) || !out)
        return HERALD_EINVAL;
    if (len >= UINT32_MAX)
        return HERALD_ETOOBIG;
    return 0;
}

/* A failed render leaves out as it was, never with half a body appended. */
static int restore(struct buf *out, size_t len, int rc)
{
    if (rc) {
        out->len = len;
        if (out->data)
            out->data[len] = '\0';
    }
    return rc;
}

int payload_json_compact(const char *in, size_t len, struct buf *out)
{
    struct parser p;
    struct writer w;
    size_t len0;
    int rc = check_input(in, len, out);

    if (rc)
        return rc;
    len0 = out->len;
    parser_init(&p, in, len, PAYLOAD_MAX_DEPTH);
    rc = parse_document(&p);
    if (!rc) {
        memset(&w, 0, sizeof(w));
        w.s = p.s;
        w.nodes = p.nodes;
        w.keys = (const unsigned char *)p.keys.data;
        w.out = out;
        buf_init(&w.numtmp, len);
        rc = emit_value(&w, 0);
        free(w.members);
        buf_release(&w.numtmp);
    }
    parser_release(&p);
    return restore(out, len0, rc);
}

static int render_data(const char *event, size_t len, struct buf *out)
{
    static const unsigned char data_key[] = "data";
    const struct node *val = NULL;
    struct parser p;
    int rc;

    /* Only the top-level members are needed: record one level deep. */
    parser_init(&p, event, len, 1);
    rc = parse_document(&p);
    if (!rc && p.nodes[0].type != T_OBJECT)
        rc = HERALD_EPARSE;
    for (uint32_t k = 0, i = 1; !rc && k < p.nodes[0].aux; k++, i = p.nodes[i + 1].next) {
        uint32_t klen;
        const unsigned char *key =
            key_bytes(&p.nodes[i], p.s, (const unsigned char *)p.keys.data, &klen);
        /* The last "data" wins, as it does in JSON.parse. */
        if (klen == 4 && memcmp(key, data_key, 4) == 0)
            val = &p.nodes[i + 1];
    }
    if (!rc)
        rc = val ? buf_append(out, event + val->start, val->end - val->start) : HERALD_EPARSE;
    parser_release(&p);
    return rc;
}

static int render_message(const char *event, size_t len, struct buf *out)
{
    struct parser p;
    int rc;

    /* Validate only (nothing recorded): the event must be JSON, which also
     * makes it valid UTF-8 and so the body valid JSON. */
    parser_init(&p, event, len, -1);
    rc = parse_document(&p);
    parser_release(&p);
    if (!rc)
        rc = buf_append(out, "{\"message\":\"", 12);
    if (!rc)
        rc = emit_escaped_raw(out, (const unsigned char *)event, len);
    if (!rc)
        rc = buf_append(out, "\"}", 2);
    return rc;
}

int payload_render(enum payload_mode mode, const char *event, size_t len, struct buf *out)
{
    size_t len0;
    int rc = check_input(event, len, out);

    if (rc)
        return rc;
    len0 = out->len;
    switch (mode) {
    case PAYLOAD_RAW:
        rc = buf_append(out, event, len);
        break;
    case PAYLOAD_COMPACT:
        rc = payload_json_compact(event, len, out);
        break;
    case PAYLOAD_DATA:
        rc = render_data(event, len, out);
        break;
    case PAYLOAD_MESSAGE:
        rc = render_message(event, len, out);
        break;
    default:
        rc = HERALD_EINVAL;
        break;
    }
    return restore(out, len0, rc);
}
