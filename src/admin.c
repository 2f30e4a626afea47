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
#include <errno.h>
#include <getopt.h>
#include <hiredis/hiredis.h>
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
    struct config cfg;
    redisContext *rc;
    bool json;
    bool show_secrets;
    const char *tenant;
};

static void subs_usage(FILE *out)
{
    fprintf(out,
            "usage: herald subs [--config FILE] [--redis URL] COMMAND ...\n"
            "  put [FILE|-]               validate a subscription JSON and store it\n"
            "  get ID [--show-secrets]    print one subscription (secrets redacted)\n"
            "  list [--tenant T] [--json] list subscriptions\n"
            "  delete ID                  remove a subscription\n");
}

static int connect_redis(struct admin *a)
{
    struct redis_url u;
    struct timeval tv = {a->cfg.redis_timeout_ms / 1000, (a->cfg.redis_timeout_ms % 1000) * 1000};
    redisReply *r;
    char url[512];

    if (redis_url_parse(a->cfg.redis_url, &u)) {
        fprintf(stderr, "herald: invalid value for \"redis.url\"\n");
        return 2;
    }
    a->rc = redisConnectWithTimeout(u.host, u.port, tv);
    if (!a->rc || a->rc->err) {
        config_redact_url(a->cfg.redis_url, url, sizeof(url));
        fprintf(stderr, "herald: cannot connect to Redis at \"%s\": %s\n", url,
                a->rc ? a->rc->errstr : "out of memory");
        return 1;
    }
    redisSetTimeout(a->rc, tv);
    if (u.password[0]) {
        r = redisCommand(a->rc, "AUTH %s", u.password);
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

static redisReply *command_ok(struct admin *a, redisReply *r)
{
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
    if (a->cfg.delivery_https_only && strncmp(sub->url, "https://", 8) != 0) {
        fprintf(stderr, "herald: invalid subscription: field \"url\": delivery.https_only is "
                        "set, so the URL must be https\n");
        subs_unref(sub);
        free(doc);
        return 1;
    }
    if ((rc = connect_redis(a))) {
        subs_unref(sub);
        free(doc);
        return rc;
    }
    snprintf(key, sizeof(key), "herald:sub:%s", sub->id);
    r = command_ok(a, redisCommand(a->rc, "EVAL %s 1 %s %b %s %s", put_script, key, doc, len,
                                   sub->tenant, sub->id));
    free(doc);
    if (!r) {
        subs_unref(sub);
        return 1;
    }
    printf("%s subscription \"%s\" of tenant \"%s\"\n", r->integer ? "updated" : "created",
           sub->id, sub->tenant);
    freeReplyObject(r);
    subs_unref(sub);
    return 0;
}

/* Replaces each secret with its first few characters, enough to tell keys apart. */
static char *redact_doc(const char *doc, size_t len)
{
    cJSON *root = cJSON_ParseWithLength(doc, len), *secrets;
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
    if ((rc = connect_redis(a)))
        return rc;
    r = command_ok(a, redisCommand(a->rc, "GET herald:sub:%s", argv[1]));
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
    if ((rc = connect_redis(a)))
        return rc;
    if (!a->json)
        printf("%-24s %-16s %-8s %-40s %s\n", "ID", "TENANT", "STATUS", "URL", "EVENTS");
    if (a->tenant) {
        ids = command_ok(a, redisCommand(a->rc, "SMEMBERS herald:tenant:%s", a->tenant));
        if (!ids)
            return 1;
        for (size_t i = 0; i < ids->elements; i++) {
            r = command_ok(a, redisCommand(a->rc, "GET herald:sub:%s", ids->element[i]->str));
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
            r = command_ok(a, redisCommand(a->rc, "SCAN %s MATCH herald:sub:* COUNT 500", cursor));
            if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
                freeReplyObject(r);
                return 1;
            }
            snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
            for (size_t i = 0; i < r->element[1]->elements; i++) {
                redisReply *d = command_ok(a, redisCommand(a->rc, "GET %s",
                                                           r->element[1]->element[i]->str));
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
    if ((rc = connect_redis(a)))
        return rc;
    snprintf(key, sizeof(key), "herald:sub:%s", argv[1]);
    r = command_ok(a, redisCommand(a->rc, "EVAL %s 1 %s %s", delete_script, key, argv[1]));
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
    char err[512];
    int c, rc = 2;

    memset(&a, 0, sizeof(a));
    if (config_init(&a.cfg))
        return 1;
    optind = 0;
    /* "+" keeps getopt from permuting: options before and after the command both work. */
    while ((c = getopt_long(argc, argv, "+c:r:t:jsh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config_path = optarg; break;
        case 'r': redis_url = optarg; break;
        case 't': a.tenant = optarg; break;
        case 'j': a.json = true; break;
        case 's': a.show_secrets = true; break;
        case 'h': subs_usage(stdout); rc = 0; goto out;
        default: subs_usage(stderr); goto out;
        }
    }
    if ((config_path && config_load_file(&a.cfg, config_path, err, sizeof(err))) ||
        config_load_env(&a.cfg, envp, err, sizeof(err)) ||
        (redis_url && config_set(&a.cfg, "redis.url", redis_url, err, sizeof(err)))) {
        fprintf(stderr, "herald: %s\n", err);
        goto out;
    }
    argc -= optind;
    argv += optind;
    if (argc < 1) {
        subs_usage(stderr);
        goto out;
    }
    /* Options may also follow the command word. */
    {
        int sub_argc = argc;
        char **sub_argv = argv;
        optind = 0; /* 0, not 1: makes glibc forget the "+" mode of the first scan */
        while ((c = getopt_long(sub_argc, sub_argv, "c:r:t:jsh", opts, NULL)) != -1) {
            switch (c) {
            case 't': a.tenant = optarg; break;
            case 'j': a.json = true; break;
            case 's': a.show_secrets = true; break;
            case 'r':
                if (config_set(&a.cfg, "redis.url", optarg, err, sizeof(err))) {
                    fprintf(stderr, "herald: %s\n", err);
                    goto out;
                }
                break;
            default: subs_usage(stderr); goto out;
            }
        }
        /* Remaining positional arguments, after the command word. */
        argc = 1 + (sub_argc - optind);
        for (int i = 0; i < sub_argc - optind; i++)
            argv[1 + i] = sub_argv[optind + i];
    }
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
out:
    if (a.rc)
        redisFree(a.rc);
    config_release(&a.cfg);
    return rc;
}
