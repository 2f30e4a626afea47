/*
 * Configuration table and parsers; see config.h.
 *
 * The table below is the single source of truth for herald's keys. Adding a
 * key means adding one row: parsing, environment mapping, validation, the
 * help text, the README table and the redacted dump all follow from it.
 */
#include "herald/config.h"
#include "herald/err.h"
#include "herald/netguard.h"

#include <ctype.h>
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum cfg_type { T_STRING, T_INT, T_BOOL, T_DURATION, T_SIZE, T_LIST, T_SCHEDULE, T_LEVEL, T_KAFKA };

static const char *const type_names[] = {"string", "integer",  "bool",  "duration", "size",
                                         "list",   "schedule", "level", "string"};

typedef int (*cfg_check_fn)(const char *value, char *why, size_t whylen);

struct cfg_key {
    const char *name;
    enum cfg_type type;
    const char *def;
    int64_t min, max;
    unsigned flags;
    size_t off;
    cfg_check_fn check;
    const char *help;
};

#define F_SECRET   1u /* never printed */
#define F_URL      2u /* printed with credentials redacted */
#define F_EMPTY_OK 4u /* a string that may be empty */

#define OFF(field) offsetof(struct config, field)
/* Room kept for a retry record's headers (and the key) above the event itself. */
#define RECORD_HEADROOM (64 * 1024)
#define DAY_MS          (24LL * 3600 * 1000)

static int check_listen(const char *value, char *why, size_t whylen);
static int check_topic(const char *value, char *why, size_t whylen);
static int check_redis_url(const char *value, char *why, size_t whylen);
static int check_cidrs(const char *value, char *why, size_t whylen);
static int check_header_value(const char *value, char *why, size_t whylen);

/* clang-format off */
static const struct cfg_key keys[] = {
    {"kafka.bootstrap.servers", T_KAFKA, "localhost:9092", 0, 0, 0, 0, NULL,
     "Kafka bootstrap servers. Every kafka.* key is handed to librdkafka as is "
     "(security.protocol, sasl.*, ssl.*, ...)."},
    {"kafka.group.id", T_KAFKA, "herald", 0, 0, 0, 0, NULL,
     "Consumer group; every herald replica of one deployment shares it."},
    {"topics.events", T_LIST, "herald.events", 0, 0, 0, OFF(events_topics), NULL,
     "Input topics, comma-separated; an entry starting with ^ is a regex."},
    {"topics.retry_prefix", T_STRING, "herald.retry.", 0, 0, 0, OFF(retry_prefix), check_topic,
     "Prefix of the retry tier topics; one topic per distinct delay, e.g. herald.retry.5m."},
    {"topics.dlq", T_STRING, "herald.dlq", 0, 0, 0, OFF(dlq_topic), check_topic,
     "Dead-letter topic: poison events and jobs that ran out of attempts, with the reason."},
    {"topics.attempts", T_STRING, "herald.attempts", 0, 0, 0, OFF(attempts_topic), check_topic,
     "One record per delivery attempt."},
    {"redis.url", T_STRING, "redis://127.0.0.1:6379/0", 0, 0, F_URL, OFF(redis_url),
     check_redis_url, "Redis holding subscriptions: redis://[:password@]host[:port][/db]."},
    {"redis.timeout", T_DURATION, "2s", 10, 60000, 0, OFF(redis_timeout_ms), NULL,
     "Longest wait for a Redis reply before the connection is dropped and retried."},
    {"retry.schedule", T_SCHEDULE, "5s,5m,30m,2h,5h,10h,10h", 0, 0, 0, OFF(retry_schedule_ms),
     NULL, "Delay before attempt 2, 3, ...; the last delay repeats up to max_attempts."},
    {"retry.jitter", T_INT, "20", 0, 50, 0, OFF(retry_jitter_pct), NULL,
     "Random spread of each retry delay, in percent either way."},
    {"delivery.timeout", T_DURATION, "15s", 100, 300000, 0, OFF(delivery_timeout_ms), NULL,
     "Whole-request timeout when the subscription sets none."},
    {"delivery.connect_timeout", T_DURATION, "5s", 100, 60000, 0,
     OFF(delivery_connect_timeout_ms), NULL, "TCP+TLS connect timeout."},
    {"delivery.max_in_flight", T_INT, "1024", 1, 100000, 0, OFF(delivery_max_in_flight), NULL,
     "Concurrent HTTP requests of one worker."},
    {"delivery.max_in_flight_per_endpoint", T_INT, "64", 1, 10000, 0,
     OFF(delivery_endpoint_in_flight), NULL,
     "Concurrent requests to one subscription when it sets no max_in_flight."},
    {"delivery.rate_limit_per_s", T_INT, "0", 0, 1000000, 0, OFF(delivery_rate_limit), NULL,
     "Requests per second to one subscription when it sets none; 0 means unlimited."},
    {"delivery.max_attempts", T_INT, "8", 1, 100, 0, OFF(delivery_max_attempts), NULL,
     "Attempts before dead-lettering when the subscription sets no max_attempts."},
    {"delivery.max_pending", T_INT, "20000", 10, 10000000, 0, OFF(delivery_max_pending), NULL,
     "Unsettled delivery jobs held in memory; consumption pauses above it."},
    {"delivery.response_max", T_SIZE, "64KiB", 0, 16 << 20, 0, OFF(delivery_response_max), NULL,
     "Response body bytes read before the response is cut off."},
    {"delivery.allow_cidrs", T_STRING, "", 0, 0, F_EMPTY_OK, OFF(delivery_allow_cidrs),
     check_cidrs, "Address ranges exempt from the SSRF guard (e.g. 10.0.0.0/8); empty: "
     "loopback, private, link-local and other non-public targets are refused."},
    {"delivery.https_only", T_BOOL, "false", 0, 0, 0, OFF(delivery_https_only), NULL,
     "Refuse subscriptions whose URL is not https."},
    {"delivery.ca_bundle", T_STRING, "", 0, 0, F_EMPTY_OK, OFF(delivery_ca_bundle), NULL,
     "CA bundle file for TLS verification; empty: the system store."},
    {"delivery.proxy", T_STRING, "", 0, 0, F_EMPTY_OK | F_URL, OFF(delivery_proxy), NULL,
     "HTTP(S) proxy for deliveries; empty: direct (proxy environment variables are ignored)."},
    {"delivery.user_agent", T_STRING, "herald/" HERALD_VERSION, 0, 0, 0,
     OFF(delivery_user_agent), check_header_value, "User-Agent header of deliveries."},
    {"breaker.failures", T_INT, "10", 1, 100000, 0, OFF(breaker_failures), NULL,
     "Consecutive failures that open a subscription's circuit breaker."},
    {"breaker.cooldown", T_DURATION, "30s", 100, DAY_MS, 0, OFF(breaker_cooldown_ms), NULL,
     "Time an open breaker waits before letting one probe through."},
    {"subscription.disable_after", T_DURATION, "5d", 0, 365 * DAY_MS, 0, OFF(disable_after_ms),
     NULL, "Disable a subscription that has failed continuously this long; 0 never."},
    {"event.max_bytes", T_SIZE, "512KiB", 64, 64 << 20, 0, OFF(event_max_bytes), NULL,
     "Largest event accepted; larger ones are dead-lettered (without their body). Must stay "
     "64KiB under kafka.message.max.bytes so retry records fit."},
    {"cache.ttl", T_DURATION, "60s", 0, DAY_MS, 0, OFF(cache_ttl_ms), NULL,
     "How long a tenant's subscriptions are cached without a change notification."},
    {"cache.max_tenants", T_INT, "100000", 1, 100000000, 0, OFF(cache_max_tenants), NULL,
     "Tenants held in the in-process cache."},
    {"attempts.history", T_INT, "100", 0, 1000000, 0, OFF(attempts_history), NULL,
     "Attempt records kept per subscription in Redis (herald:attempts:{sub}); 0 keeps none."},
    {"attempts.body_max", T_SIZE, "1KiB", 0, 1 << 20, 0, OFF(attempts_body_max), NULL,
     "Response body bytes kept in an attempt record."},
    {"http.listen", T_STRING, "0.0.0.0:9464", 0, 0, F_EMPTY_OK, OFF(http_listen), check_listen,
     "Address of /metrics, /healthz and /readyz; empty disables."},
    {"log.level", T_LEVEL, "info", 0, 0, 0, OFF(log_level), NULL,
     "debug, info, warn or error."},
    {"shutdown.timeout", T_DURATION, "30s", 0, 3600000, 0, OFF(shutdown_timeout_ms), NULL,
     "On SIGTERM, how long in-flight deliveries may finish before they are handed to retry."},
};
/* clang-format on */

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static const struct cfg_key *find_key(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

void strlist_release(struct strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static char *trim(char *s)
{
    char *e;
    while (isspace((unsigned char)*s))
        s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

int config_split_list(const char *s, struct strlist *out)
{
    char *copy = strdup(s), *p;
    size_t cap = 0;
    int rc = 0;

    out->v = NULL;
    out->n = 0;
    if (!copy)
        return HERALD_ENOMEM;
    if (*trim(copy) == '\0')
        goto done;
    /* strtok_r would silently skip empty items; walk commas by hand instead. */
    p = copy;
    for (;;) {
        char *comma = strchr(p, ',');
        char *item;
        if (comma)
            *comma = '\0';
        item = trim(p);
        if (*item == '\0') {
            rc = HERALD_EINVAL;
            goto done;
        }
        if (out->n == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            char **v = realloc(out->v, ncap * sizeof(*v));
            if (!v) {
                rc = HERALD_ENOMEM;
                goto done;
            }
            out->v = v;
            cap = ncap;
        }
        out->v[out->n] = strdup(item);
        if (!out->v[out->n]) {
            rc = HERALD_ENOMEM;
            goto done;
        }
        out->n++;
        if (!comma)
            break;
        p = comma + 1;
    }
done:
    free(copy);
    if (rc)
        strlist_release(out);
    return rc;
}

struct unit {
    const char *suffix;
    int64_t mul;
};

/*
 * "<digits><suffix>" scaled by the suffix's multiplier. A bare number is
 * accepted only when bare_ok, or when it is 0 (zero needs no unit).
 */
static int parse_scaled(const char *s, const struct unit *units, size_t nunits, bool bare_ok,
                        int64_t *out)
{
    char *end;
    long long v;

    errno = 0;
    if (!isdigit((unsigned char)*s))
        return HERALD_EINVAL;
    v = strtoll(s, &end, 10);
    if (errno)
        return HERALD_ERANGE;
    if (*end == '\0' && !bare_ok) {
        if (v != 0)
            return HERALD_EINVAL; /* "30" could mean seconds or milliseconds */
        *out = 0;
        return 0;
    }
    for (size_t i = 0; i < nunits; i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            if (v > INT64_MAX / units[i].mul)
                return HERALD_ERANGE;
            *out = v * units[i].mul;
            return 0;
        }
    }
    return HERALD_EINVAL;
}

int config_parse_duration(const char *s, int64_t *ms)
{
    static const struct unit units[] = {
        {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    return parse_scaled(s, units, sizeof(units) / sizeof(units[0]), false, ms);
}

void config_format_duration(int64_t ms, char *out, size_t outlen)
{
    if (ms != 0 && ms % 86400000 == 0)
        snprintf(out, outlen, "%lldd", (long long)(ms / 86400000));
    else if (ms != 0 && ms % 3600000 == 0)
        snprintf(out, outlen, "%lldh", (long long)(ms / 3600000));
    else if (ms != 0 && ms % 60000 == 0)
        snprintf(out, outlen, "%lldm", (long long)(ms / 60000));
    else if (ms != 0 && ms % 1000 == 0)
        snprintf(out, outlen, "%llds", (long long)(ms / 1000));
    else
        snprintf(out, outlen, "%lldms", (long long)ms);
}

int config_parse_size(const char *s, int64_t *bytes)
{
    /* "" first: a bare number is a number of bytes. */
    static const struct unit units[] = {{"", 1},        {"B", 1},           {"K", 1024},
                                        {"KiB", 1024},  {"M", 1024 * 1024}, {"MiB", 1024 * 1024},
                                        {"G", 1 << 30}, {"GiB", 1 << 30}};
    return parse_scaled(s, units, sizeof(units) / sizeof(units[0]), true, bytes);
}

static int parse_int(const char *s, int64_t *out)
{
    char *end;
    long long v;
    errno = 0;
    if (!*s)
        return HERALD_EINVAL;
    v = strtoll(s, &end, 10);
    if (errno)
        return HERALD_ERANGE;
    if (*end)
        return HERALD_EINVAL;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, bool *out)
{
    if (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on") || !strcmp(s, "1")) {
        *out = true;
        return 0;
    }
    if (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off") || !strcmp(s, "0")) {
        *out = false;
        return 0;
    }
    return HERALD_EINVAL;
}

static int check_topic(const char *value, char *why, size_t whylen)
{
    /* Kafka topic names: [a-zA-Z0-9._-], at most 249 characters. */
    size_t n = strlen(value);
    if (n == 0 || n > 249) {
        set_err(why, whylen, "a topic name has 1 to 249 characters");
        return HERALD_EINVAL;
    }
    for (const char *p = value; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-') {
            set_err(why, whylen, "a topic name may only contain letters, digits, '.', '_', '-'");
            return HERALD_EINVAL;
        }
    }
    return 0;
}

static int check_listen(const char *value, char *why, size_t whylen)
{
    const char *colon = strrchr(value, ':');
    int64_t port;
    if (!*value)
        return 0;
    if (!colon || colon == value || parse_int(colon + 1, &port) || port < 0 || port > 65535) {
        set_err(why, whylen, "expected host:port, e.g. 0.0.0.0:9464");
        return HERALD_EINVAL;
    }
    return 0;
}

static int check_redis_url(const char *value, char *why, size_t whylen)
{
    if (strncmp(value, "redis://", 8) != 0) {
        set_err(why, whylen, "expected redis://[:password@]host[:port][/db]");
        return HERALD_EINVAL;
    }
    return 0;
}

static int check_cidrs(const char *value, char *why, size_t whylen)
{
    struct netguard *ng = NULL;
    int rc = netguard_new(value, &ng, why, whylen);
    netguard_free(ng);
    return rc;
}

static int check_header_value(const char *value, char *why, size_t whylen)
{
    for (const char *p = value; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            set_err(why, whylen, "control characters are not allowed in a header value");
            return HERALD_EINVAL;
        }
    }
    return 0;
}

static int kafka_set(struct config *cfg, const char *rdkey, const char *value)
{
    struct kv *kv;
    char *v;
    for (size_t i = 0; i < cfg->nkafka; i++) {
        if (strcmp(cfg->kafka[i].key, rdkey) == 0) {
            v = strdup(value);
            if (!v)
                return HERALD_ENOMEM;
            /* An overridden value may be a password (a file value replaced from the env). */
            OPENSSL_cleanse(cfg->kafka[i].value, strlen(cfg->kafka[i].value));
            free(cfg->kafka[i].value);
            cfg->kafka[i].value = v;
            return 0;
        }
    }
    kv = realloc(cfg->kafka, (cfg->nkafka + 1) * sizeof(*kv));
    if (!kv)
        return HERALD_ENOMEM;
    cfg->kafka = kv;
    kv[cfg->nkafka].key = strdup(rdkey);
    kv[cfg->nkafka].value = strdup(value);
    if (!kv[cfg->nkafka].key || !kv[cfg->nkafka].value) {
        free(kv[cfg->nkafka].key);
        free(kv[cfg->nkafka].value);
        return HERALD_ENOMEM;
    }
    cfg->nkafka++;
    return 0;
}

const char *config_kafka_get(const struct config *cfg, const char *rdkey)
{
    for (size_t i = 0; i < cfg->nkafka; i++)
        if (strcmp(cfg->kafka[i].key, rdkey) == 0)
            return cfg->kafka[i].value;
    return NULL;
}

static int set_schedule(struct config *cfg, const char *value, char *why, size_t whylen)
{
    struct strlist l;
    int64_t *ms;
    int rc = config_split_list(value, &l);

    if (rc || l.n == 0 || l.n > 32) {
        strlist_release(&l);
        set_err(why, whylen, "expected 1 to 32 comma-separated durations, e.g. 5s,5m,1h");
        return HERALD_EINVAL;
    }
    ms = calloc(l.n, sizeof(*ms));
    if (!ms) {
        strlist_release(&l);
        return HERALD_ENOMEM;
    }
    for (size_t i = 0; i < l.n; i++) {
        if (config_parse_duration(l.v[i], &ms[i]) || ms[i] < 10 || ms[i] > 7 * DAY_MS) {
            set_err(why, whylen, "\"%s\" is not a delay between 10ms and 7d", l.v[i]);
            free(ms);
            strlist_release(&l);
            return HERALD_EINVAL;
        }
    }
    free(cfg->retry_schedule_ms);
    cfg->retry_schedule_ms = ms;
    cfg->retry_schedule_len = l.n;
    strlist_release(&l);
    return 0;
}

static int set_typed(struct config *cfg, const struct cfg_key *k, const char *value, char *why,
                     size_t whylen)
{
    void *field = (char *)cfg + k->off;
    int64_t v = 0;
    int rc = 0;

    switch (k->type) {
    case T_KAFKA:
        return kafka_set(cfg, k->name + 6, value);
    case T_STRING: {
        char *s;
        if (!*value && !(k->flags & F_EMPTY_OK)) {
            set_err(why, whylen, "may not be empty");
            return HERALD_EINVAL;
        }
        if (k->check && (rc = k->check(value, why, whylen)))
            return rc;
        s = strdup(value);
        if (!s)
            return HERALD_ENOMEM;
        if (*(char **)field && (k->flags & (F_URL | F_SECRET)))
            OPENSSL_cleanse(*(char **)field, strlen(*(char **)field));
        free(*(char **)field);
        *(char **)field = s;
        return 0;
    }
    case T_INT:
        rc = parse_int(value, &v);
        break;
    case T_DURATION:
        rc = config_parse_duration(value, &v);
        break;
    case T_SIZE:
        rc = config_parse_size(value, &v);
        break;
    case T_BOOL:
        if (parse_bool(value, (bool *)field)) {
            set_err(why, whylen, "expected true or false");
            return HERALD_EINVAL;
        }
        return 0;
    case T_LEVEL:
        if (log_level_parse(value, (enum log_level *)field)) {
            set_err(why, whylen, "expected debug, info, warn or error");
            return HERALD_EINVAL;
        }
        return 0;
    case T_LIST: {
        struct strlist l;
        rc = config_split_list(value, &l);
        if (rc == HERALD_ENOMEM)
            return rc;
        if (rc || l.n == 0) {
            strlist_release(&l);
            set_err(why, whylen, "expected a non-empty comma-separated list");
            return HERALD_EINVAL;
        }
        strlist_release((struct strlist *)field);
        *(struct strlist *)field = l;
        return 0;
    }
    case T_SCHEDULE:
        return set_schedule(cfg, value, why, whylen);
    }
    if (rc) {
        set_err(why, whylen, "expected %s%s", k->type == T_INT ? "an integer" : "a ",
                k->type == T_DURATION ? "duration such as 250ms, 5s, 5m, 2h or 1d"
                : k->type == T_SIZE   ? "size such as 4096, 64KiB or 1MiB"
                                      : "");
        return HERALD_EINVAL;
    }
    if (v < k->min || (k->max && v > k->max)) {
        set_err(why, whylen, "must be between %lld and %lld", (long long)k->min, (long long)k->max);
        return HERALD_EINVAL;
    }
    *(int64_t *)field = v;
    return 0;
}

int config_set(struct config *cfg, const char *key, const char *value, char *err, size_t errlen)
{
    const struct cfg_key *k = find_key(key);
    char why[256] = "";
    int rc;

    if (!k && strncmp(key, "kafka.", 6) == 0 && key[6]) {
        rc = kafka_set(cfg, key + 6, value);
        return rc;
    }
    if (!k) {
        set_err(err, errlen, "unknown config key \"%s\" (see herald --help-config)", key);
        return HERALD_EINVAL;
    }
    rc = set_typed(cfg, k, value, why, sizeof(why));
    if (rc == HERALD_ENOMEM)
        set_err(err, errlen, "out of memory setting \"%s\"", key);
    else if (rc)
        set_err(err, errlen, "invalid value for \"%s\": %s", key, why);
    return rc;
}

int config_init(struct config *cfg)
{
    char err[256];
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < NKEYS; i++) {
        int rc = config_set(cfg, keys[i].name, keys[i].def, err, sizeof(err));
        if (rc) {
            /* A default that does not parse is a bug in the table above. */
            fprintf(stderr, "herald: bad built-in default: %s\n", err);
            config_release(cfg);
            return rc;
        }
    }
    return 0;
}

void config_release(struct config *cfg)
{
    for (size_t i = 0; i < NKEYS; i++) {
        void *field = (char *)cfg + keys[i].off;
        if (keys[i].type == T_STRING) {
            char *v = *(char **)field;
            /* URLs may carry passwords (redis.url, delivery.proxy). */
            if (v && (keys[i].flags & (F_URL | F_SECRET)))
                OPENSSL_cleanse(v, strlen(v));
            free(v);
            *(char **)field = NULL;
        } else if (keys[i].type == T_LIST) {
            strlist_release((struct strlist *)field);
        }
    }
    for (size_t i = 0; i < cfg->nkafka; i++) {
        free(cfg->kafka[i].key);
        /* kafka values may hold SASL passwords. */
        if (cfg->kafka[i].value) {
            OPENSSL_cleanse(cfg->kafka[i].value, strlen(cfg->kafka[i].value));
            free(cfg->kafka[i].value);
        }
    }
    free(cfg->kafka);
    cfg->kafka = NULL;
    cfg->nkafka = 0;
    free(cfg->retry_schedule_ms);
    cfg->retry_schedule_ms = NULL;
    cfg->retry_schedule_len = 0;
}

int config_load_file(struct config *cfg, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char line[8192];
    char inner[512];
    int lineno = 0, rc = 0;

    if (!f) {
        set_err(err, errlen, "cannot open config file \"%s\": %s", path, strerror(errno));
        return HERALD_EIO;
    }
    while (fgets(line, sizeof(line), f)) {
        char *p, *eq, *key, *value;
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            set_err(err, errlen, "%s:%d: line too long", path, lineno);
            rc = HERALD_EINVAL;
            break;
        }
        p = trim(line);
        if (*p == '\0' || *p == '#')
            continue;
        eq = strchr(p, '=');
        if (!eq) {
            set_err(err, errlen, "%s:%d: expected key = value", path, lineno);
            rc = HERALD_EINVAL;
            break;
        }
        *eq = '\0';
        key = trim(p);
        value = trim(eq + 1);
        /* Values may be quoted so that leading/trailing blanks survive. */
        if (strlen(value) >= 2 && value[0] == '"' && value[strlen(value) - 1] == '"') {
            value[strlen(value) - 1] = '\0';
            value++;
        }
        rc = config_set(cfg, key, value, inner, sizeof(inner));
        if (rc) {
            set_err(err, errlen, "%s:%d: %s", path, lineno, inner);
            break;
        }
    }
    fclose(f);
    return rc;
}

/* "delivery.max_in_flight" -> "DELIVERY_MAX_IN_FLIGHT" */
static void env_name(const char *key, char *out, size_t outlen)
{
    size_t i = 0;
    for (; *key && i + 1 < outlen; key++, i++)
        out[i] = *key == '.' ? '_' : (char)toupper((unsigned char)*key);
    out[i] = '\0';
}

int config_load_env(struct config *cfg, char *const *envp, char *err, size_t errlen)
{
    char name[256], inner[512];
    for (; envp && *envp; envp++) {
        const char *var = *envp, *eq = strchr(var, '=');
        size_t nlen;
        const struct cfg_key *k = NULL;
        int rc;

        if (!eq || strncmp(var, "HERALD_", 7) != 0)
            continue;
        nlen = (size_t)(eq - var) - 7;
        if (nlen == 0 || nlen >= sizeof(name))
            continue;
        memcpy(name, var + 7, nlen);
        name[nlen] = '\0';
        if (strncmp(name, "KAFKA_", 6) == 0 && name[6]) {
            char rdkey[256];
            size_t i = 0;
            /* A table key (kafka.group.id) and passthrough share this path. */
            for (const char *p = name + 6; *p && i + 1 < sizeof(rdkey); p++)
                rdkey[i++] = *p == '_' ? '.' : (char)tolower((unsigned char)*p);
            rdkey[i] = '\0';
            rc = kafka_set(cfg, rdkey, eq + 1);
            if (rc)
                return rc;
            continue;
        }
        for (size_t i = 0; i < NKEYS; i++) {
            char en[256];
            env_name(keys[i].name, en, sizeof(en));
            if (strcmp(en, name) == 0) {
                k = &keys[i];
                break;
            }
        }
        if (!k) {
            log_warn("config", "ignoring unknown environment variable \"HERALD_%s\"", name);
            continue;
        }
        rc = config_set(cfg, k->name, eq + 1, inner, sizeof(inner));
        if (rc) {
            set_err(err, errlen, "environment HERALD_%s: %s", name, inner);
            return rc;
        }
    }
    return 0;
}

int config_validate(const struct config *cfg, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char why[512];

    for (size_t i = 0; i < cfg->nkafka; i++) {
        if (rd_kafka_conf_set(conf, cfg->kafka[i].key, cfg->kafka[i].value, why, sizeof(why)) !=
            RD_KAFKA_CONF_OK) {
            set_err(err, errlen, "invalid value for \"kafka.%s\": %s", cfg->kafka[i].key, why);
            rd_kafka_conf_destroy(conf);
            return HERALD_EINVAL;
        }
    }
    rd_kafka_conf_destroy(conf);
    for (size_t i = 0; i < cfg->events_topics.n; i++) {
        const char *t = cfg->events_topics.v[i];
        if (t[0] != '^' && check_topic(t, why, sizeof(why))) {
            set_err(err, errlen, "invalid value for \"topics.events\": \"%s\": %s", t, why);
            return HERALD_EINVAL;
        }
    }
    if (strlen(cfg->retry_prefix) > 200) {
        set_err(err, errlen, "invalid value for \"topics.retry_prefix\": too long");
        return HERALD_EINVAL;
    }
    {
        /*
         * A retry record is the event plus headers: if it cannot be produced,
         * the job can never settle. Keep room under the producer's limit.
         */
        const char *mmb = config_kafka_get(cfg, "message.max.bytes");
        int64_t limit = mmb ? strtoll(mmb, NULL, 10) : 1000000;
        if (cfg->event_max_bytes + RECORD_HEADROOM > limit) {
            set_err(err, errlen,
                    "invalid value for \"event.max_bytes\": %lld leaves no room for retry "
                    "records under kafka.message.max.bytes (%lld); keep it at most %lld",
                    (long long)cfg->event_max_bytes, (long long)limit,
                    (long long)(limit - RECORD_HEADROOM));
            return HERALD_EINVAL;
        }
    }
    if (cfg->delivery_connect_timeout_ms > cfg->delivery_timeout_ms) {
        set_err(err, errlen,
                "invalid value for \"delivery.connect_timeout\": longer than delivery.timeout");
        return HERALD_EINVAL;
    }
    if (cfg->delivery_endpoint_in_flight > cfg->delivery_max_in_flight) {
        set_err(err, errlen,
                "invalid value for \"delivery.max_in_flight_per_endpoint\": larger than "
                "delivery.max_in_flight");
        return HERALD_EINVAL;
    }
    return 0;
}

/* Whether a kafka.* property may hold a credential and must not be printed. */
static bool kafka_key_secret(const char *k)
{
    return strstr(k, "password") || strstr(k, "secret") || strstr(k, "key") || strstr(k, "jaas") ||
           strstr(k, "token") || strstr(k, "credential");
}

void config_redact_url(const char *url, char *out, size_t outlen)
{
    /*
     * The last '@' ends the credentials (as redis_url_parse reads them), so a
     * password holding '@' or '/' is never partly printed; over-redacting a
     * path that holds an '@' is harmless. curl also takes proxies without a
     * scheme ("user:pass@host:port").
     */
    const char *scheme = strstr(url, "://");
    const char *start = scheme ? scheme + 3 : url, *at = strrchr(start, '@'), *colon;
    if (!at) {
        snprintf(out, outlen, "%s", url);
        return;
    }
    colon = memchr(start, ':', (size_t)(at - start));
    /* Keep a user name before a password; a user name alone is still a credential. */
    snprintf(out, outlen, "%.*s****%s", (int)((colon ? colon + 1 : start) - url), url, at);
}

static void value_text(const struct config *cfg, const struct cfg_key *k, char *out, size_t n)
{
    const void *field = (const char *)cfg + k->off;
    char tmp[64];
    switch (k->type) {
    case T_KAFKA: {
        const char *v = config_kafka_get(cfg, k->name + 6);
        snprintf(out, n, "%s", v ? v : "");
        return;
    }
    case T_STRING: {
        const char *s = *(char *const *)field;
        if (k->flags & F_SECRET)
            snprintf(out, n, "%s", *s ? "****" : "");
        else if (k->flags & F_URL)
            config_redact_url(s, out, n);
        else
            snprintf(out, n, "%s", s);
        return;
    }
    case T_INT:
    case T_SIZE:
        snprintf(out, n, "%lld", (long long)*(const int64_t *)field);
        return;
    case T_DURATION:
        config_format_duration(*(const int64_t *)field, out, n);
        return;
    case T_BOOL:
        snprintf(out, n, "%s", *(const bool *)field ? "true" : "false");
        return;
    case T_LEVEL:
        snprintf(out, n, "%s", log_level_name(*(const enum log_level *)field));
        return;
    case T_LIST: {
        const struct strlist *l = field;
        size_t pos = 0;
        out[0] = '\0';
        for (size_t i = 0; i < l->n && pos < n; i++)
            pos += (size_t)snprintf(out + pos, n - pos, "%s%s", i ? "," : "", l->v[i]);
        return;
    }
    case T_SCHEDULE: {
        size_t pos = 0;
        out[0] = '\0';
        for (size_t i = 0; i < cfg->retry_schedule_len && pos < n; i++) {
            config_format_duration(cfg->retry_schedule_ms[i], tmp, sizeof(tmp));
            pos += (size_t)snprintf(out + pos, n - pos, "%s%s", i ? "," : "", tmp);
        }
        return;
    }
    }
}

void config_print_help(FILE *out)
{
    fprintf(out,
            "herald configuration keys (file: key = value; environment: HERALD_ + key in\n"
            "upper case with dots as _, e.g. redis.url -> HERALD_REDIS_URL; any\n"
            "kafka.<librdkafka property> passes through, e.g. HERALD_KAFKA_SASL_USERNAME)\n\n");
    for (size_t i = 0; i < NKEYS; i++) {
        const struct cfg_key *k = &keys[i];
        fprintf(out, "%-38s %-9s default: %s\n", k->name, type_names[k->type],
                *k->def ? k->def : "(empty)");
        fprintf(out, "    %s", k->help);
        if (k->type == T_INT || k->type == T_DURATION || k->type == T_SIZE) {
            if (k->type == T_DURATION) {
                char a[32], b[32];
                config_format_duration(k->min, a, sizeof(a));
                config_format_duration(k->max, b, sizeof(b));
                fprintf(out, " [%s..%s]", a, b);
            } else {
                fprintf(out, " [%lld..%lld]", (long long)k->min, (long long)k->max);
            }
        }
        fputc('\n', out);
    }
}

void config_print_markdown(FILE *out)
{
    fprintf(out, "| key | type | default | meaning |\n|---|---|---|---|\n");
    for (size_t i = 0; i < NKEYS; i++) {
        const struct cfg_key *k = &keys[i];
        fprintf(out, "| `%s` | %s | %s%s%s | %s |\n", k->name, type_names[k->type],
                *k->def ? "`" : "", *k->def ? k->def : "(empty)", *k->def ? "`" : "", k->help);
    }
}

void config_print(const struct config *cfg, FILE *out)
{
    char v[2048];
    for (size_t i = 0; i < NKEYS; i++) {
        value_text(cfg, &keys[i], v, sizeof(v));
        fprintf(out, "%s = %s\n", keys[i].name, v);
    }
    for (size_t i = 0; i < cfg->nkafka; i++) {
        if (!strcmp(cfg->kafka[i].key, "bootstrap.servers") ||
            !strcmp(cfg->kafka[i].key, "group.id"))
            continue;
        fprintf(out, "kafka.%s = %s\n", cfg->kafka[i].key,
                kafka_key_secret(cfg->kafka[i].key) ? "****" : cfg->kafka[i].value);
    }
}

void config_log(const struct config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return;
    config_print(cfg, f);
    fclose(f);
    for (char *p = text; p && *p; p++)
        if (*p == '\n')
            *p = ';';
    log_info("config", "effective configuration: %s", text ? text : "");
    free(text);
}
