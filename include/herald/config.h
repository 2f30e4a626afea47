/*
 * herald configuration: one table drives everything.
 *
 * Every key lives in one static table (name, type, default, bounds,
 * description, secret flag, where it is stored). The same table parses the
 * `key = value` file, applies HERALD_* environment overrides, validates,
 * prints `herald --help-config`, and prints the redacted effective config at
 * start-up. Unknown keys in the file are errors that name the key.
 *
 * kafka.* keys are not in the table beyond the two with defaults: they pass
 * straight to librdkafka (so SASL/TLS need no code) and are validated by
 * librdkafka itself when the config is checked.
 */
#ifndef HERALD_CONFIG_H
#define HERALD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "herald/log.h"

struct strlist {
    char **v;
    size_t n;
};

struct kv {
    char *key;
    char *value;
};

struct config {
    /* kafka.* passthrough, in the order they were set (later wins). */
    struct kv *kafka;
    size_t nkafka;

    struct strlist events_topics;
    char *retry_prefix;
    char *dlq_topic;
    char *attempts_topic;

    char *redis_url;
    int64_t redis_timeout_ms;

    int64_t *retry_schedule_ms;
    size_t retry_schedule_len;
    int64_t retry_jitter_pct;

    int64_t delivery_timeout_ms;
    int64_t delivery_connect_timeout_ms;
    int64_t delivery_max_in_flight;
    int64_t delivery_endpoint_in_flight;
    int64_t delivery_rate_limit;
    int64_t delivery_max_attempts;
    int64_t delivery_max_pending;
    int64_t delivery_response_max;
    char *delivery_allow_cidrs;
    bool delivery_https_only;
    char *delivery_ca_bundle;
    char *delivery_proxy;
    char *delivery_user_agent;

    int64_t breaker_failures;
    int64_t breaker_cooldown_ms;
    int64_t disable_after_ms;

    int64_t event_max_bytes;
    int64_t cache_ttl_ms;
    int64_t cache_max_tenants;
    int64_t attempts_history;
    int64_t attempts_body_max;

    char *http_listen;
    enum log_level log_level;
    int64_t shutdown_timeout_ms;
};

/* Fills cfg with the embedded defaults. Returns 0 or HERALD_ENOMEM. */
int config_init(struct config *cfg);
void config_release(struct config *cfg);

/*
 * Sets one key from its text form. Returns 0, or HERALD_EINVAL with a message
 * naming the key in err ("unknown config key \"x\"", "invalid value for
 * \"delivery.timeout\": ...").
 */
int config_set(struct config *cfg, const char *key, const char *value, char *err, size_t errlen);

/* Reads a `key = value` file (# comments, blank lines). Errors name file:line and key. */
int config_load_file(struct config *cfg, const char *path, char *err, size_t errlen);

/*
 * Applies HERALD_* variables from envp: HERALD_ + key upper-cased with dots
 * as '_'; HERALD_KAFKA_X_Y maps to kafka.x.y. Unknown HERALD_* names are
 * ignored with a warning (Kubernetes injects HERALD_SERVICE_* and similar
 * into every pod). Returns 0 or HERALD_EINVAL naming the variable.
 */
int config_load_env(struct config *cfg, char *const *envp, char *err, size_t errlen);

/*
 * Cross-key checks and librdkafka validation of every kafka.* key. Returns 0
 * or HERALD_EINVAL naming the key.
 */
int config_validate(const struct config *cfg, char *err, size_t errlen);

/* Looks up a kafka.* passthrough value (key without the "kafka." prefix). */
const char *config_kafka_get(const struct config *cfg, const char *rdkafka_key);

/* `herald --help-config`: every key, type, default and meaning. */
void config_print_help(FILE *out);
/* Markdown table of every key, for the README. */
void config_print_markdown(FILE *out);
/* Effective config, secrets redacted, one key = value per line. */
void config_print(const struct config *cfg, FILE *out);
/* Logs the redacted effective config as one info line. */
void config_log(const struct config *cfg);

/* Durations: "250ms", "5s", "5m", "2h", "1d" (integer + unit; "0" alone is zero). */
int config_parse_duration(const char *s, int64_t *ms);
/* Canonical short label of a duration: 5000 -> "5s", 300000 -> "5m", 100 -> "100ms". */
void config_format_duration(int64_t ms, char *out, size_t outlen);
/* Sizes: bytes, or with KiB/MiB/GiB (also K/M/G, same binary units). */
int config_parse_size(const char *s, int64_t *bytes);
/* Splits a comma-separated list, trimming blanks; empty items are refused. */
int config_split_list(const char *s, struct strlist *out);
void strlist_release(struct strlist *l);

/* Redacts credentials in a URL (redis://user:pass@host -> redis://user:****@host). */
void config_redact_url(const char *url, char *out, size_t outlen);

#endif
