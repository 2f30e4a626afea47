/*
 * validate_tool: herald's own verdict on one document, for
 * tests/integration/test_schemas.py, which checks that the JSON Schemas in
 * schemas/ and the C validators agree.
 *
 *   validate_tool sub < doc
 *   validate_tool event [--key KEY] [--max-bytes N] < doc
 *
 * Prints "ok" (exit 0), or for a subscription "invalid <field> <why>" with
 * the field as a JSON string (it may hold spaces), and for an event
 * "reject <reason> <why>" (exit 1). Usage errors exit 2.
 */
#include "herald/buf.h"
#include "herald/err.h"
#include "herald/event.h"
#include "herald/subs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOOL_MAX_DOC (64u << 20)

static int usage(void)
{
    fprintf(stderr, "usage: validate_tool sub < doc\n"
                    "       validate_tool event [--key KEY] [--max-bytes N] < doc\n");
    return 2;
}

static int read_stdin(struct buf *b)
{
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
        if (buf_append(b, chunk, n))
            return 1;
    return ferror(stdin) ? 1 : 0;
}

static int check_sub(const struct buf *doc)
{
    struct sub *sub = NULL;
    char field[256] = "", why[512] = "";
    int rc = subs_parse(doc->data ? doc->data : "", doc->len, &sub, field, sizeof(field), why,
                        sizeof(why));
    if (rc == 0) {
        subs_unref(sub);
        printf("ok\n");
        return 0;
    }
    if (rc != HERALD_EINVAL) {
        fprintf(stderr, "validate_tool: %s\n", herald_strerror(rc));
        return 2;
    }
    {
        /* The field is a JSON string: member names may hold spaces ("headers.X Foo"). */
        struct buf q;
        buf_init(&q, 4 * sizeof(field));
        buf_append_json_str(&q, field, strlen(field));
        printf("invalid \"%s\" %s\n", q.data ? q.data : "", why);
        buf_release(&q);
    }
    return 1;
}

static int check_event(const struct buf *doc, const char *key, size_t max_bytes)
{
    struct event *ev = NULL;
    enum event_reject reject;
    char why[512] = "";
    int rc = event_parse(doc->data, doc->len, key, key ? strlen(key) : 0, max_bytes, &ev, &reject,
                         why, sizeof(why));
    if (rc == 0) {
        event_unref(ev);
        printf("ok\n");
        return 0;
    }
    if (rc == HERALD_ENOMEM) {
        fprintf(stderr, "validate_tool: %s\n", herald_strerror(rc));
        return 2;
    }
    printf("reject %s %s\n", event_reject_name(reject), why);
    return 1;
}

int main(int argc, char **argv)
{
    const char *key = NULL;
    size_t max_bytes = 1u << 20; /* event.max_bytes' default */
    struct buf doc;
    int ret;

    if (argc < 2 || (strcmp(argv[1], "sub") != 0 && strcmp(argv[1], "event") != 0))
        return usage();
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[1], "event") == 0 && strcmp(argv[i], "--key") == 0 && i + 1 < argc) {
            key = argv[++i];
        } else if (strcmp(argv[1], "event") == 0 && strcmp(argv[i], "--max-bytes") == 0 &&
                   i + 1 < argc) {
            char *end;
            unsigned long long v = strtoull(argv[++i], &end, 10);
            if (*end || v == 0)
                return usage();
            max_bytes = (size_t)v;
        } else {
            return usage();
        }
    }
    buf_init(&doc, TOOL_MAX_DOC);
    if (read_stdin(&doc)) {
        fprintf(stderr, "validate_tool: cannot read the document\n");
        buf_release(&doc);
        return 2;
    }
    ret = strcmp(argv[1], "sub") == 0 ? check_sub(&doc) : check_event(&doc, key, max_bytes);
    buf_release(&doc);
    return ret;
}
