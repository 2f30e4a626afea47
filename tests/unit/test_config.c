/*
 * Unit tests for config.c: the embedded defaults, config_set() for every
 * value type with the exact error text (which names the key), bounds,
 * unknown keys, kafka.* passthrough, config files (comments, quoting, errors
 * naming file:line), HERALD_* environment overrides, cross-key validation,
 * the duration / size / list parsers, URL redaction, and that the printed
 * and logged configuration never shows a password.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "herald/config.h"
#include "herald/err.h"
#include "herald/log.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define DAY  (24LL * 3600 * 1000)

static int setup(void **state)
{
    struct config *cfg = malloc(sizeof(*cfg));
    if (!cfg || config_init(cfg) != 0)
        return -1;
    *state = cfg;
    return 0;
}

static int teardown(void **state)
{
    config_release(*state);
    free(*state);
    return 0;
}

/* ---- defaults ------------------------------------------------------------ */

static void test_defaults(void **state)
{
    static const int64_t schedule[] = {5000,     300000,   1800000, 7200000,
                                       18000000, 36000000, 36000000};
    const struct config *cfg = *state;
    char err[256] = "";

    assert_string_equal(config_kafka_get(cfg, "bootstrap.servers"), "localhost:9092");
    assert_string_equal(config_kafka_get(cfg, "group.id"), "herald");
    assert_null(config_kafka_get(cfg, "sasl.username"));
    assert_int_equal(cfg->events_topics.n, 1);
    assert_string_equal(cfg->events_topics.v[0], "herald.events");
    assert_string_equal(cfg->retry_prefix, "herald.retry.");
    assert_string_equal(cfg->dlq_topic, "herald.dlq");
    assert_string_equal(cfg->attempts_topic, "herald.attempts");
    assert_string_equal(cfg->redis_url, "redis://127.0.0.1:6379/0");
    assert_int_equal(cfg->redis_timeout_ms, 2000);
    assert_int_equal(cfg->retry_schedule_len, N(schedule));
    assert_memory_equal(cfg->retry_schedule_ms, schedule, sizeof(schedule));
    assert_int_equal(cfg->retry_jitter_pct, 20);
    assert_int_equal(cfg->delivery_timeout_ms, 15000);
    assert_int_equal(cfg->delivery_connect_timeout_ms, 5000);
    assert_int_equal(cfg->delivery_max_in_flight, 1024);
    assert_int_equal(cfg->delivery_endpoint_in_flight, 64);
    assert_int_equal(cfg->delivery_rate_limit, 0);
    assert_int_equal(cfg->delivery_max_attempts, 8);
    assert_int_equal(cfg->delivery_max_pending, 20000);
    assert_int_equal(cfg->delivery_response_max, 64 * 1024);
    assert_string_equal(cfg->delivery_allow_cidrs, "");
    assert_false(cfg->delivery_https_only);
    assert_string_equal(cfg->delivery_ca_bundle, "");
    assert_string_equal(cfg->delivery_proxy, "");
    assert_string_equal(cfg->delivery_user_agent, "herald/" HERALD_VERSION);
    assert_int_equal(cfg->breaker_failures, 10);
    assert_int_equal(cfg->breaker_cooldown_ms, 30000);
    assert_int_equal(cfg->disable_after_ms, 5 * DAY);
    assert_int_equal(cfg->event_max_bytes, 512 << 10);
    assert_int_equal(cfg->cache_ttl_ms, 60000);
    assert_int_equal(cfg->cache_max_tenants, 100000);
    assert_int_equal(cfg->attempts_history, 100);
    assert_int_equal(cfg->attempts_body_max, 1024);
    assert_string_equal(cfg->http_listen, "0.0.0.0:9464");
    assert_int_equal(cfg->log_level, LOG_LEVEL_INFO);
    assert_int_equal(cfg->shutdown_timeout_ms, 30000);
    /* The defaults are consistent with each other and with librdkafka. */
    if (config_validate(cfg, err, sizeof(err)) != 0)
        fail_msg("defaults do not validate: %s", err);
}

/* ---- config_set ---------------------------------------------------------- */

struct set_ok {
    const char *key, *value;
    size_t off; /* offset of an int64_t field, or SIZE_MAX */
    int64_t want;
};

#define I64(field) offsetof(struct config, field)

static const struct set_ok set_ok_cases[] = {
    {"delivery.timeout", "30s", I64(delivery_timeout_ms), 30000},
    {"delivery.timeout", "100ms", I64(delivery_timeout_ms), 100},
    {"delivery.timeout", "5m", I64(delivery_timeout_ms), 300000},
    {"delivery.connect_timeout", "250ms", I64(delivery_connect_timeout_ms), 250},
    {"delivery.max_in_flight", "1", I64(delivery_max_in_flight), 1},
    {"delivery.max_in_flight", "100000", I64(delivery_max_in_flight), 100000},
    {"delivery.rate_limit_per_s", "0", I64(delivery_rate_limit), 0},
    {"delivery.max_attempts", "100", I64(delivery_max_attempts), 100},
    {"delivery.response_max", "0", I64(delivery_response_max), 0},
    {"delivery.response_max", "16MiB", I64(delivery_response_max), 16 << 20},
    {"delivery.response_max", "4096", I64(delivery_response_max), 4096},
    {"event.max_bytes", "64", I64(event_max_bytes), 64},
    {"event.max_bytes", "2M", I64(event_max_bytes), 2 << 20},
    {"event.max_bytes", "64MiB", I64(event_max_bytes), 64 << 20},
    {"retry.jitter", "0", I64(retry_jitter_pct), 0},
    {"retry.jitter", "50", I64(retry_jitter_pct), 50},
    {"subscription.disable_after", "0", I64(disable_after_ms), 0},
    {"subscription.disable_after", "365d", I64(disable_after_ms), 365 * DAY},
    {"cache.ttl", "0", I64(cache_ttl_ms), 0},
    {"cache.ttl", "1d", I64(cache_ttl_ms), DAY},
    {"attempts.history", "0", I64(attempts_history), 0},
    {"attempts.body_max", "1MiB", I64(attempts_body_max), 1 << 20},
    {"shutdown.timeout", "1h", I64(shutdown_timeout_ms), 3600000},
    {"breaker.cooldown", "100ms", I64(breaker_cooldown_ms), 100},
};

static void test_set_valid(void **state)
{
    struct config *cfg = *state;
    for (size_t i = 0; i < N(set_ok_cases); i++) {
        const struct set_ok *c = &set_ok_cases[i];
        char err[256] = "";
        int64_t got;
        if (config_set(cfg, c->key, c->value, err, sizeof(err)) != 0)
            fail_msg("%s = %s refused: %s", c->key, c->value, err);
        memcpy(&got, (const char *)cfg + c->off, sizeof(got));
        if (got != c->want)
            fail_msg("%s = %s: %lld, want %lld", c->key, c->value, (long long)got,
                     (long long)c->want);
    }
}

static void test_set_other_types(void **state)
{
    static const struct {
        const char *value;
        bool want;
    } bools[] = {{"true", true}, {"false", false}, {"yes", true}, {"no", false},
                 {"on", true},   {"off", false},   {"1", true},   {"0", false}};
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    struct config *cfg = *state;
    char err[256] = "";

    for (size_t i = 0; i < N(bools); i++) {
        assert_int_equal(config_set(cfg, "delivery.https_only", bools[i].value, err, sizeof(err)),
                         0);
        assert_int_equal(cfg->delivery_https_only, bools[i].want);
    }
    for (size_t i = 0; i < N(levels); i++) {
        assert_int_equal(config_set(cfg, "log.level", levels[i], err, sizeof(err)), 0);
        assert_int_equal(cfg->log_level, (enum log_level)i);
    }
    assert_int_equal(config_set(cfg, "topics.events", " a.b , c-d,e_f ", err, sizeof(err)), 0);
    assert_int_equal(cfg->events_topics.n, 3);
    assert_string_equal(cfg->events_topics.v[0], "a.b");
    assert_string_equal(cfg->events_topics.v[1], "c-d");
    assert_string_equal(cfg->events_topics.v[2], "e_f");
    assert_int_equal(config_set(cfg, "retry.schedule", "10ms, 1m,7d", err, sizeof(err)), 0);
    assert_int_equal(cfg->retry_schedule_len, 3);
    assert_int_equal(cfg->retry_schedule_ms[0], 10);
    assert_int_equal(cfg->retry_schedule_ms[1], 60000);
    assert_int_equal(cfg->retry_schedule_ms[2], 7 * DAY);
    assert_int_equal(config_set(cfg, "redis.url", "redis://:pw@redis:6380/2", err, sizeof(err)), 0);
    assert_string_equal(cfg->redis_url, "redis://:pw@redis:6380/2");
    assert_int_equal(config_set(cfg, "http.listen", "", err, sizeof(err)), 0);
    assert_string_equal(cfg->http_listen, "");
    assert_int_equal(config_set(cfg, "http.listen", "[::]:9000", err, sizeof(err)), 0);
    assert_int_equal(
        config_set(cfg, "delivery.allow_cidrs", "10.0.0.0/8,127.0.0.1/32", err, sizeof(err)), 0);
    assert_string_equal(cfg->delivery_allow_cidrs, "10.0.0.0/8,127.0.0.1/32");
    assert_int_equal(
        config_set(cfg, "delivery.user_agent", "acme-hooks/1.0 (+https://a.b)", err, sizeof(err)),
        0);
    assert_string_equal(cfg->delivery_user_agent, "acme-hooks/1.0 (+https://a.b)");
}

struct set_bad {
    const char *key, *value, *err;
};

static const struct set_bad set_bad_cases[] = {
    {"nope.key", "1", "unknown config key \"nope.key\" (see herald --help-config)"},
    {"delivery", "1", "unknown config key \"delivery\" (see herald --help-config)"},
    {"kafka.", "1", "unknown config key \"kafka.\" (see herald --help-config)"},
    {"Delivery.Timeout", "5s",
     "unknown config key \"Delivery.Timeout\" (see herald --help-config)"},
    {"delivery.timeout", "5",
     "invalid value for \"delivery.timeout\": expected a duration such as 250ms, 5s, 5m, 2h or 1d"},
    {"delivery.timeout", "5 s",
     "invalid value for \"delivery.timeout\": expected a duration such as 250ms, 5s, 5m, 2h or 1d"},
    {"delivery.timeout", "-5s",
     "invalid value for \"delivery.timeout\": expected a duration such as 250ms, 5s, 5m, 2h or 1d"},
    {"delivery.timeout", "",
     "invalid value for \"delivery.timeout\": expected a duration such as "
     "250ms, 5s, 5m, 2h or 1d"},
    {"delivery.timeout", "99ms",
     "invalid value for \"delivery.timeout\": must be between 100 and "
     "300000"},
    {"delivery.timeout", "301s",
     "invalid value for \"delivery.timeout\": must be between 100 and "
     "300000"},
    {"delivery.max_in_flight", "many",
     "invalid value for \"delivery.max_in_flight\": expected an integer"},
    {"delivery.max_in_flight", "1.5",
     "invalid value for \"delivery.max_in_flight\": expected an integer"},
    {"delivery.max_in_flight", "",
     "invalid value for \"delivery.max_in_flight\": expected an "
     "integer"},
    {"delivery.max_in_flight", "0",
     "invalid value for \"delivery.max_in_flight\": must be between 1 and 100000"},
    {"delivery.max_in_flight", "100001",
     "invalid value for \"delivery.max_in_flight\": must be between 1 and 100000"},
    {"delivery.max_in_flight", "99999999999999999999",
     "invalid value for \"delivery.max_in_flight\": expected an integer"},
    {"retry.jitter", "51", "invalid value for \"retry.jitter\": must be between 0 and 50"},
    {"retry.jitter", "-1", "invalid value for \"retry.jitter\": must be between 0 and 50"},
    {"event.max_bytes", "63",
     "invalid value for \"event.max_bytes\": must be between 64 and "
     "67108864"},
    {"event.max_bytes", "1k",
     "invalid value for \"event.max_bytes\": expected a size such as "
     "4096, 64KiB or 1MiB"},
    {"event.max_bytes", "1.5MiB",
     "invalid value for \"event.max_bytes\": expected a size such as "
     "4096, 64KiB or 1MiB"},
    {"delivery.response_max", "17MiB",
     "invalid value for \"delivery.response_max\": must be between 0 and 16777216"},
    {"delivery.https_only", "maybe",
     "invalid value for \"delivery.https_only\": expected true or false"},
    {"delivery.https_only", "TRUE",
     "invalid value for \"delivery.https_only\": expected true or false"},
    {"log.level", "verbose",
     "invalid value for \"log.level\": expected debug, info, warn or error"},
    {"topics.events", "",
     "invalid value for \"topics.events\": expected a non-empty "
     "comma-separated list"},
    {"topics.events", "a,,b",
     "invalid value for \"topics.events\": expected a non-empty "
     "comma-separated list"},
    {"topics.events", "a,",
     "invalid value for \"topics.events\": expected a non-empty "
     "comma-separated list"},
    {"topics.dlq", "", "invalid value for \"topics.dlq\": may not be empty"},
    {"topics.dlq", "dead letters",
     "invalid value for \"topics.dlq\": a topic name may only "
     "contain letters, digits, '.', '_', '-'"},
    {"topics.attempts", "a/b",
     "invalid value for \"topics.attempts\": a topic name may only "
     "contain letters, digits, '.', '_', '-'"},
    {"redis.url", "http://redis:6379",
     "invalid value for \"redis.url\": expected "
     "redis://[:password@]host[:port][/db]"},
    {"redis.url", "", "invalid value for \"redis.url\": may not be empty"},
    {"http.listen", "9464",
     "invalid value for \"http.listen\": expected host:port, e.g. "
     "0.0.0.0:9464"},
    {"http.listen", "0.0.0.0:65536",
     "invalid value for \"http.listen\": expected host:port, e.g. "
     "0.0.0.0:9464"},
    {"delivery.user_agent", "a\r\nX-Evil: 1",
     "invalid value for \"delivery.user_agent\": control "
     "characters are not allowed in a header value"},
    {"retry.schedule", "",
     "invalid value for \"retry.schedule\": expected 1 to 32 "
     "comma-separated durations, e.g. 5s,5m,1h"},
    {"retry.schedule", "5s,,5m",
     "invalid value for \"retry.schedule\": expected 1 to 32 "
     "comma-separated durations, e.g. 5s,5m,1h"},
    {"retry.schedule", "5s,0",
     "invalid value for \"retry.schedule\": \"0\" is not a delay "
     "between 10ms and 7d"},
    {"retry.schedule", "9ms",
     "invalid value for \"retry.schedule\": \"9ms\" is not a delay "
     "between 10ms and 7d"},
    {"retry.schedule", "8d",
     "invalid value for \"retry.schedule\": \"8d\" is not a delay between "
     "10ms and 7d"},
    {"retry.schedule", "5s,soon",
     "invalid value for \"retry.schedule\": \"soon\" is not a delay "
     "between 10ms and 7d"},
};

static void test_set_invalid(void **state)
{
    struct config *cfg = *state;
    for (size_t i = 0; i < N(set_bad_cases); i++) {
        const struct set_bad *c = &set_bad_cases[i];
        char err[512] = "";
        int rc = config_set(cfg, c->key, c->value, err, sizeof(err));
        if (rc != HERALD_EINVAL)
            fail_msg("%s = \"%s\": rc %d, want HERALD_EINVAL", c->key, c->value, rc);
        if (strcmp(err, c->err) != 0)
            fail_msg("%s = \"%s\":\n  got  %s\n  want %s", c->key, c->value, err, c->err);
    }
    /* A refused value leaves the previous one in place. */
    assert_int_equal(cfg->delivery_timeout_ms, 15000);
    assert_int_equal(cfg->delivery_max_in_flight, 1024);
    assert_int_equal(cfg->events_topics.n, 1);
    assert_string_equal(cfg->dlq_topic, "herald.dlq");
    assert_int_equal(cfg->retry_schedule_len, 7);
}

static void test_set_schedule_limits(void **state)
{
    struct config *cfg = *state;
    char list[512] = "", err[512] = "";
    for (int i = 0; i < 32; i++)
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%ds", i ? "," : "", i + 1);
    assert_int_equal(config_set(cfg, "retry.schedule", list, err, sizeof(err)), 0);
    assert_int_equal(cfg->retry_schedule_len, 32);
    strcat(list, ",33s");
    assert_int_equal(config_set(cfg, "retry.schedule", list, err, sizeof(err)), HERALD_EINVAL);
    assert_string_equal(err, "invalid value for \"retry.schedule\": expected 1 to 32 "
                             "comma-separated durations, e.g. 5s,5m,1h");
    assert_int_equal(cfg->retry_schedule_len, 32);
}

static void test_kafka_passthrough(void **state)
{
    struct config *cfg = *state;
    char err[256] = "";
    assert_int_equal(config_set(cfg, "kafka.security.protocol", "SASL_SSL", err, sizeof(err)), 0);
    assert_int_equal(config_set(cfg, "kafka.sasl.mechanism", "PLAIN", err, sizeof(err)), 0);
    assert_int_equal(config_set(cfg, "kafka.sasl.username", "alice", err, sizeof(err)), 0);
    assert_int_equal(config_set(cfg, "kafka.sasl.username", "bob", err, sizeof(err)), 0);
    assert_int_equal(
        config_set(cfg, "kafka.bootstrap.servers", "b1:9092,b2:9092", err, sizeof(err)), 0);
    assert_string_equal(config_kafka_get(cfg, "security.protocol"), "SASL_SSL");
    assert_string_equal(config_kafka_get(cfg, "sasl.username"), "bob"); /* later wins */
    assert_string_equal(config_kafka_get(cfg, "bootstrap.servers"), "b1:9092,b2:9092");
    assert_null(config_kafka_get(cfg, "kafka.sasl.username"));
    /* Passthrough keys are checked by librdkafka in config_validate, not here. */
    assert_int_equal(config_set(cfg, "kafka.made.up", "x", err, sizeof(err)), 0);
    assert_string_equal(config_kafka_get(cfg, "made.up"), "x");
}

/* ---- config files -------------------------------------------------------- */

/* Writes text to a fresh temporary file; path receives its name. */
static void write_temp(char *path, size_t pathlen, const char *text)
{
    int fd;
    FILE *f;
    snprintf(path, pathlen, "/tmp/herald-test-config-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void test_load_file(void **state)
{
    static const char text[] = "# herald test config\n"
                               "\n"
                               "   # an indented comment\n"
                               "delivery.timeout = 20s\n"
                               "delivery.max_in_flight=7\n"
                               "\t  topics.events =  a , b  \t\n"
                               "delivery.user_agent = \"  spaced agent  \"\n"
                               "delivery.allow_cidrs =\n"
                               "kafka.sasl.username = alice\n"
                               "kafka.client.id = \"herald-1\"\n"
                               "log.level = debug\r\n"
                               "delivery.ca_bundle = \"\"\n"
                               "delivery.https_only = true"; /* no final newline */
    struct config *cfg = *state;
    char path[64], err[512] = "";
    write_temp(path, sizeof(path), text);
    if (config_load_file(cfg, path, err, sizeof(err)) != 0) {
        unlink(path);
        fail_msg("config_load_file: %s", err);
    }
    unlink(path);
    assert_int_equal(cfg->delivery_timeout_ms, 20000);
    assert_int_equal(cfg->delivery_max_in_flight, 7);
    assert_int_equal(cfg->events_topics.n, 2);
    assert_string_equal(cfg->events_topics.v[1], "b");
    /* Quotes keep the blanks inside them and are removed once. */
    assert_string_equal(cfg->delivery_user_agent, "  spaced agent  ");
    assert_string_equal(cfg->delivery_ca_bundle, "");
    assert_string_equal(cfg->delivery_allow_cidrs, "");
    assert_string_equal(config_kafka_get(cfg, "sasl.username"), "alice");
    assert_string_equal(config_kafka_get(cfg, "client.id"), "herald-1");
    assert_int_equal(cfg->log_level, LOG_LEVEL_DEBUG);
    assert_true(cfg->delivery_https_only);
}

static void test_load_file_errors(void **state)
{
    static const struct {
        const char *text;
        const char *err; /* after "<path>:" */
    } cases[] = {
        {"delivery.timeout = 5s\n\ndelivery.timeout = 5\n",
         "3: invalid value for \"delivery.timeout\": expected a duration such as 250ms, 5s, 5m, "
         "2h or 1d"},
        {"# ok\ndelivery.timeout 5s\n", "2: expected key = value"},
        {"a = 1\n", "1: unknown config key \"a\" (see herald --help-config)"},
        {"\n\n\n\nlog.level = loud\n",
         "5: invalid value for \"log.level\": expected debug, info, warn or error"},
        /* Comments are whole lines only: the rest of a line is the value. */
        {"delivery.timeout = 5s # five seconds\n",
         "1: invalid value for \"delivery.timeout\": expected a duration such as 250ms, 5s, 5m, "
         "2h or 1d"},
        {"= 5s\n", "1: unknown config key \"\" (see herald --help-config)"},
    };
    struct config *cfg = *state;
    for (size_t i = 0; i < N(cases); i++) {
        char path[64], err[512] = "", want[600];
        int rc;
        write_temp(path, sizeof(path), cases[i].text);
        rc = config_load_file(cfg, path, err, sizeof(err));
        unlink(path);
        snprintf(want, sizeof(want), "%s:%s", path, cases[i].err);
        if (rc != HERALD_EINVAL || strcmp(err, want) != 0)
            fail_msg("case %zu: rc %d\n  got  %s\n  want %s", i, rc, err, want);
    }
}

static void test_load_file_long_line_and_missing(void **state)
{
    struct config *cfg = *state;
    char path[64], err[512] = "", want[600];
    char *text = malloc(10000);
    assert_non_null(text);
    memcpy(text, "delivery.user_agent = ", 22);
    memset(text + 22, 'a', 9000);
    strcpy(text + 9022, "\n");
    write_temp(path, sizeof(path), text);
    free(text);
    assert_int_equal(config_load_file(cfg, path, err, sizeof(err)), HERALD_EINVAL);
    unlink(path);
    snprintf(want, sizeof(want), "%s:1: line too long", path);
    assert_string_equal(err, want);

    assert_int_equal(config_load_file(cfg, "/nonexistent/herald.conf", err, sizeof(err)),
                     HERALD_EIO);
    assert_string_equal(err, "cannot open config file \"/nonexistent/herald.conf\": No such file "
                             "or directory");
}

/* ---- environment --------------------------------------------------------- */

/* Captures log lines written during a call into a temporary file. */
static int log_capture_begin(void)
{
    FILE *f = tmpfile();
    int fd;
    assert_non_null(f);
    fd = dup(fileno(f));
    fclose(f);
    assert_true(fd >= 0);
    log_set_fd(fd);
    return fd;
}

static char *log_capture_end(int fd)
{
    char *text = calloc(1, 65536);
    ssize_t n;
    log_set_fd(2);
    assert_non_null(text);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    n = read(fd, text, 65535);
    assert_true(n >= 0);
    close(fd);
    return text;
}

static void test_load_env(void **state)
{
    static const char *const env[] = {
        "PATH=/usr/bin",
        "HERALD_DELIVERY_TIMEOUT=30s",
        "HERALD_DELIVERY_MAX_IN_FLIGHT_PER_ENDPOINT=5",
        "HERALD_TOPICS_RETRY_PREFIX=r.",
        "HERALD_KAFKA_SASL_USERNAME=alice",
        "HERALD_KAFKA_BOOTSTRAP_SERVERS=b1:9092,b2:9092",
        "HERALD_KAFKA_GROUP_ID=g2",
        "HERALD_SERVICE_PORT=tcp://10.0.0.1:80",
        "HERALD_=ignored",
        "HERALDX=ignored",
        "HERALD_REDIS_URL=redis://:pw@r:6379/1",
        "HERALD_DELIVERY_HTTPS_ONLY=yes",
        "HERALD_NO_EQUALS_SIGN",
        NULL,
    };
    struct config *cfg = *state;
    char err[512] = "", *log;
    int fd = log_capture_begin();
    int rc = config_load_env(cfg, (char *const *)env, err, sizeof(err));
    log = log_capture_end(fd);
    if (rc != 0)
        fail_msg("config_load_env: %s", err);
    assert_int_equal(cfg->delivery_timeout_ms, 30000);
    assert_int_equal(cfg->delivery_endpoint_in_flight, 5);
    assert_string_equal(cfg->retry_prefix, "r.");
    assert_string_equal(config_kafka_get(cfg, "sasl.username"), "alice");
    assert_string_equal(config_kafka_get(cfg, "bootstrap.servers"), "b1:9092,b2:9092");
    assert_string_equal(config_kafka_get(cfg, "group.id"), "g2");
    assert_string_equal(cfg->redis_url, "redis://:pw@r:6379/1");
    assert_true(cfg->delivery_https_only);
    /* The unknown HERALD_ variable is ignored with a warning that names it. */
    assert_non_null(strstr(log, "\"level\":\"warn\""));
    assert_non_null(strstr(log, "HERALD_SERVICE_PORT"));
    assert_null(strstr(log, "PATH"));
    free(log);
    assert_int_equal(config_load_env(cfg, NULL, err, sizeof(err)), 0);
}

static void test_load_env_invalid(void **state)
{
    static const char *const env[] = {"HERALD_DELIVERY_TIMEOUT=forever", NULL};
    static const char *const env2[] = {"HERALD_LOG_LEVEL=loud", NULL};
    struct config *cfg = *state;
    char err[512] = "";
    assert_int_equal(config_load_env(cfg, (char *const *)env, err, sizeof(err)), HERALD_EINVAL);
    assert_string_equal(err, "environment HERALD_DELIVERY_TIMEOUT: invalid value for "
                             "\"delivery.timeout\": expected a duration such as 250ms, 5s, 5m, 2h "
                             "or 1d");
    assert_int_equal(config_load_env(cfg, (char *const *)env2, err, sizeof(err)), HERALD_EINVAL);
    assert_string_equal(err, "environment HERALD_LOG_LEVEL: invalid value for \"log.level\": "
                             "expected debug, info, warn or error");
}

/* ---- validation ---------------------------------------------------------- */

static void test_validate(void **state)
{
    static const struct {
        const char *key, *value;
        const char *prefix; /* of the error */
    } cases[] = {
        {"kafka.no.such.property", "1", "invalid value for \"kafka.no.such.property\": "},
        {"kafka.session.timeout.ms", "soon", "invalid value for \"kafka.session.timeout.ms\": "},
        {"kafka.security.protocol", "carrier-pigeon",
         "invalid value for \"kafka.security.protocol\": "},
        {"delivery.connect_timeout", "20s",
         "invalid value for \"delivery.connect_timeout\": longer than delivery.timeout"},
        {"delivery.max_in_flight_per_endpoint", "2000",
         "invalid value for \"delivery.max_in_flight_per_endpoint\": larger than "
         "delivery.max_in_flight"},
        {"topics.events", "good,bad topic",
         "invalid value for \"topics.events\": \"bad topic\": a topic name may only contain "
         "letters, digits, '.', '_', '-'"},
        /* A retry record is the event plus headers: it must fit the producer's limit. */
        {"event.max_bytes", "1MiB",
         "invalid value for \"event.max_bytes\": 1048576 leaves no room for retry records "
         "under kafka.message.max.bytes (1000000); keep it at most 934464"},
        {"event.max_bytes", "934465", "invalid value for \"event.max_bytes\": 934465 "},
    };
    (void)state;
    for (size_t i = 0; i < N(cases); i++) {
        struct config cfg;
        char err[512] = "";
        assert_int_equal(config_init(&cfg), 0);
        if (config_set(&cfg, cases[i].key, cases[i].value, err, sizeof(err)) != 0)
            fail_msg("%s: %s", cases[i].key, err);
        if (config_validate(&cfg, err, sizeof(err)) != HERALD_EINVAL)
            fail_msg("%s = %s validated", cases[i].key, cases[i].value);
        if (strncmp(err, cases[i].prefix, strlen(cases[i].prefix)) != 0)
            fail_msg("%s:\n  got  %s\n  want %s...", cases[i].key, err, cases[i].prefix);
        config_release(&cfg);
    }
    {
        /* Equal timeouts and regex topics are fine; a long retry prefix is not. */
        struct config cfg;
        char err[512] = "", prefix[240];
        assert_int_equal(config_init(&cfg), 0);
        assert_int_equal(config_set(&cfg, "delivery.connect_timeout", "15s", err, sizeof(err)), 0);
        assert_int_equal(config_set(&cfg, "topics.events", "^herald\\..*,plain", err, sizeof(err)),
                         0);
        assert_int_equal(config_set(&cfg, "kafka.sasl.username", "u", err, sizeof(err)), 0);
        /* The limit follows kafka.message.max.bytes. */
        assert_int_equal(config_set(&cfg, "event.max_bytes", "934464", err, sizeof(err)), 0);
        if (config_validate(&cfg, err, sizeof(err)) != 0)
            fail_msg("valid config refused: %s", err);
        memset(prefix, 'p', 201);
        prefix[201] = '\0';
        assert_int_equal(config_set(&cfg, "topics.retry_prefix", prefix, err, sizeof(err)), 0);
        assert_int_equal(config_validate(&cfg, err, sizeof(err)), HERALD_EINVAL);
        assert_string_equal(err, "invalid value for \"topics.retry_prefix\": too long");
        config_release(&cfg);
    }
}

/* ---- parsers ------------------------------------------------------------- */

static void test_parse_duration(void **state)
{
    static const struct {
        const char *in;
        int rc;
        int64_t ms;
    } cases[] = {
        {"0", 0, 0},
        {"0ms", 0, 0},
        {"0s", 0, 0},
        {"1ms", 0, 1},
        {"250ms", 0, 250},
        {"5s", 0, 5000},
        {"5m", 0, 300000},
        {"2h", 0, 7200000},
        {"1d", 0, 86400000},
        {"90s", 0, 90000},
        {"007s", 0, 7000},
        {"106751991167d", 0, 106751991167LL * 86400000},
        {"106751991168d", HERALD_ERANGE, 0},
        {"9223372036854775807ms", 0, INT64_MAX},
        {"9223372036854775808ms", HERALD_ERANGE, 0},
        {"5", HERALD_EINVAL, 0},
        {"", HERALD_EINVAL, 0},
        {"s", HERALD_EINVAL, 0},
        {"-5s", HERALD_EINVAL, 0},
        {"+5s", HERALD_EINVAL, 0},
        {" 5s", HERALD_EINVAL, 0},
        {"5s ", HERALD_EINVAL, 0},
        {"5 s", HERALD_EINVAL, 0},
        {"5S", HERALD_EINVAL, 0},
        {"5sec", HERALD_EINVAL, 0},
        {"1.5s", HERALD_EINVAL, 0},
        {"5w", HERALD_EINVAL, 0},
        {"1h30m", HERALD_EINVAL, 0},
    };
    (void)state;
    for (size_t i = 0; i < N(cases); i++) {
        int64_t ms = -42;
        int rc = config_parse_duration(cases[i].in, &ms);
        if (rc != cases[i].rc || (rc == 0 && ms != cases[i].ms))
            fail_msg("\"%s\": rc %d ms %lld, want rc %d ms %lld", cases[i].in, rc, (long long)ms,
                     cases[i].rc, (long long)cases[i].ms);
    }
}

static void test_format_duration(void **state)
{
    static const struct {
        int64_t ms;
        const char *out;
    } cases[] = {
        {0, "0ms"},       {1, "1ms"},        {100, "100ms"},    {1500, "1500ms"},
        {5000, "5s"},     {90000, "90s"},    {300000, "5m"},    {1800000, "30m"},
        {3600000, "1h"},  {5400000, "90m"},  {7200000, "2h"},   {36000000, "10h"},
        {86400000, "1d"}, {90000000, "25h"}, {604800000, "7d"}, {-5000, "-5s"},
    };
    (void)state;
    for (size_t i = 0; i < N(cases); i++) {
        char out[32];
        int64_t back = -1;
        config_format_duration(cases[i].ms, out, sizeof(out));
        if (strcmp(out, cases[i].out) != 0)
            fail_msg("%lld: \"%s\", want \"%s\"", (long long)cases[i].ms, out, cases[i].out);
        /* Every label of a non-negative duration parses back to it. */
        if (cases[i].ms >= 0) {
            assert_int_equal(config_parse_duration(out, &back), 0);
            assert_int_equal(back, cases[i].ms);
        }
    }
}

static void test_parse_size(void **state)
{
    static const struct {
        const char *in;
        int rc;
        int64_t bytes;
    } cases[] = {
        {"0", 0, 0},
        {"4096", 0, 4096},
        {"10B", 0, 10},
        {"1K", 0, 1024},
        {"64KiB", 0, 65536},
        {"1M", 0, 1048576},
        {"1MiB", 0, 1048576},
        {"2G", 0, 2147483648LL},
        {"2GiB", 0, 2147483648LL},
        {"8589934591G", 0, 8589934591LL << 30},
        {"8589934592G", HERALD_ERANGE, 0},
        {"99999999999999999999", HERALD_ERANGE, 0},
        {"", HERALD_EINVAL, 0},
        {"K", HERALD_EINVAL, 0},
        {"1k", HERALD_EINVAL, 0},
        {"1KB", HERALD_EINVAL, 0},
        {"1 KiB", HERALD_EINVAL, 0},
        {"-1", HERALD_EINVAL, 0},
        {"1.5M", HERALD_EINVAL, 0},
        {"1T", HERALD_EINVAL, 0},
    };
    (void)state;
    for (size_t i = 0; i < N(cases); i++) {
        int64_t b = -42;
        int rc = config_parse_size(cases[i].in, &b);
        if (rc != cases[i].rc || (rc == 0 && b != cases[i].bytes))
            fail_msg("\"%s\": rc %d bytes %lld, want rc %d bytes %lld", cases[i].in, rc,
                     (long long)b, cases[i].rc, (long long)cases[i].bytes);
    }
}

static void test_split_list(void **state)
{
    static const struct {
        const char *in;
        int rc;
        size_t n;
        const char *items[3];
    } cases[] = {
        {"a", 0, 1, {"a"}},
        {"a,b", 0, 2, {"a", "b"}},
        {" a ,\tb , c ", 0, 3, {"a", "b", "c"}},
        {"a b,c", 0, 2, {"a b", "c"}},
        {"", 0, 0, {NULL}},
        {"   ", 0, 0, {NULL}},
        {",", HERALD_EINVAL, 0, {NULL}},
        {"a,", HERALD_EINVAL, 0, {NULL}},
        {",a", HERALD_EINVAL, 0, {NULL}},
        {"a,,b", HERALD_EINVAL, 0, {NULL}},
        {"a, ,b", HERALD_EINVAL, 0, {NULL}},
    };
    (void)state;
    for (size_t i = 0; i < N(cases); i++) {
        struct strlist l = {(char **)(uintptr_t)1, 99};
        int rc = config_split_list(cases[i].in, &l);
        if (rc != cases[i].rc || l.n != cases[i].n)
            fail_msg("\"%s\": rc %d n %zu, want rc %d n %zu", cases[i].in, rc, l.n, cases[i].rc,
                     cases[i].n);
        for (size_t k = 0; k < l.n; k++)
            assert_string_equal(l.v[k], cases[i].items[k]);
        if (rc)
            assert_null(l.v);
        strlist_release(&l);
    }
}

static void test_redact_url(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"},
        {"redis://:s3cret@host:6379/0", "redis://:****@host:6379/0"},
        {"redis://user:s3cret@host", "redis://user:****@host"},
        {"redis://user@host:6379", "redis://****@host:6379"},
        {"redis://:p@ss@host/0", "redis://:****@host/0"},  /* '@' inside the password */
        {"redis://:pa/ss@host/0", "redis://:****@host/0"}, /* '/' inside the password */
        {"redis://:p:w@host", "redis://:****@host"},
        {"http://proxy.local:3128", "http://proxy.local:3128"},
        {"http://u:pw@proxy.local:3128/", "http://u:****@proxy.local:3128/"},
        {"u:pw@proxy.local:3128",
         "u:****@proxy.local:3128"}, /* curl takes proxies without a scheme */
        {"proxy.local:3128", "proxy.local:3128"},
        {"", ""},
    };
    (void)state;
    for (size_t i = 0; i < N(cases); i++) {
        char out[256];
        config_redact_url(cases[i].in, out, sizeof(out));
        if (strcmp(out, cases[i].out) != 0)
            fail_msg("\"%s\": \"%s\", want \"%s\"", cases[i].in, out, cases[i].out);
    }
    {
        /* A short output buffer truncates; it never shows the password instead. */
        char out[12];
        config_redact_url("redis://:s3cret@h", out, sizeof(out));
        assert_null(strstr(out, "s3"));
        assert_string_equal(out, "redis://:**");
    }
}

/* ---- printing ------------------------------------------------------------ */

static char *print_config(const struct config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    config_print(cfg, f);
    assert_int_equal(fclose(f), 0);
    return text;
}

static void test_print_redacts(void **state)
{
    static const char *const sets[][2] = {
        {"kafka.sasl.password", "hunter2"},
        {"kafka.sasl.username", "alice"},
        {"kafka.ssl.key.password", "keypass1"},
        {"kafka.sasl.oauthbearer.client.secret", "oauth-secret"},
        {"kafka.sasl.jaas.config", "jaas-secret"},
        {"redis.url", "redis://:s3cret@redis:6379/0"},
        {"delivery.proxy", "http://pu:proxypw@proxy:3128"},
    };
    struct config *cfg = *state;
    char err[256], *text, *log;
    int fd;
    for (size_t i = 0; i < N(sets); i++)
        assert_int_equal(config_set(cfg, sets[i][0], sets[i][1], err, sizeof(err)), 0);
    text = print_config(cfg);
    assert_non_null(strstr(text, "kafka.sasl.password = ****\n"));
    assert_non_null(strstr(text, "kafka.ssl.key.password = ****\n"));
    assert_non_null(strstr(text, "kafka.sasl.username = alice\n"));
    assert_non_null(strstr(text, "redis.url = redis://:****@redis:6379/0\n"));
    assert_non_null(strstr(text, "delivery.proxy = http://pu:****@proxy:3128\n"));
    assert_non_null(strstr(text, "kafka.bootstrap.servers = localhost:9092\n"));
    assert_non_null(strstr(text, "delivery.timeout = 15s\n"));
    assert_non_null(strstr(text, "retry.schedule = 5s,5m,30m,2h,5h,10h,10h\n"));
    assert_non_null(strstr(text, "topics.events = herald.events\n"));
    assert_non_null(strstr(text, "delivery.https_only = false\n"));
    assert_non_null(strstr(text, "log.level = info\n"));
    assert_non_null(strstr(text, "event.max_bytes = 524288\n"));
    for (size_t i = 0; i < N(sets); i++)
        if (strcmp(sets[i][1], "alice") != 0)
            assert_null(strstr(text, i < 5 ? sets[i][1] : i == 5 ? "s3cret" : "proxypw"));
    free(text);

    /* The start-up log line carries the same redacted dump. */
    fd = log_capture_begin();
    config_log(cfg);
    log = log_capture_end(fd);
    assert_non_null(strstr(log, "kafka.sasl.password = ****"));
    assert_null(strstr(log, "hunter2"));
    assert_null(strstr(log, "s3cret"));
    assert_null(strstr(log, "proxypw"));
    assert_null(strstr(log, "oauth-secret"));
    free(log);
}

static void test_help(void **state)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    (void)state;
    assert_non_null(f);
    config_print_help(f);
    fclose(f);
    assert_non_null(strstr(text, "delivery.timeout"));
    assert_non_null(strstr(text, "default: 15s"));
    assert_non_null(strstr(text, "[100ms..5m]"));
    assert_non_null(strstr(text, "delivery.allow_cidrs"));
    assert_non_null(strstr(text, "default: (empty)"));
    free(text);
    text = NULL;
    f = open_memstream(&text, &len);
    assert_non_null(f);
    config_print_markdown(f);
    fclose(f);
    assert_true(strncmp(text, "| key | type | default | meaning |\n", 35) == 0);
    assert_non_null(strstr(text, "| `retry.schedule` | schedule | `5s,5m,30m,2h,5h,10h,10h` |"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_valid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_other_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_schedule_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kafka_passthrough, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_file_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_file_long_line_and_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_env_invalid, setup, teardown),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_format_duration),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_split_list),
        cmocka_unit_test(test_redact_url),
        cmocka_unit_test_setup_teardown(test_print_redacts, setup, teardown),
        cmocka_unit_test(test_help),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
