/*
 * libFuzzer target for payload.c: arbitrary bytes through the compact
 * serializer and every payload mode, checking the properties the rest of
 * herald relies on rather than just "no crash":
 *
 *  - compact output re-compacts to itself (JSON.stringify(JSON.parse(x)) is a
 *    fixed point), so it is valid JSON that herald itself accepts;
 *  - payload_render(COMPACT) is payload_json_compact, RAW is a copy;
 *  - MESSAGE accepts exactly what compact accepts, and its body is itself a
 *    compact fixed point;
 *  - DATA succeeds only on valid JSON and yields valid JSON;
 *  - a buffer one byte too small fails with HERALD_ETOOBIG and is left empty.
 */
#include "herald/buf.h"
#include "herald/err.h"
#include "herald/payload.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FUZZ_MAX (1u << 24)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        __builtin_trap();
}

static int same(const struct buf *a, const struct buf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    struct buf c1, c2, r, small;
    int rc1, rc;

    buf_init(&c1, FUZZ_MAX);
    buf_init(&c2, FUZZ_MAX);
    buf_init(&r, FUZZ_MAX);

    rc1 = payload_json_compact(in, size, &c1);
    check(rc1 == 0 || rc1 == HERALD_EPARSE);
    if (rc1 == 0) {
        check(payload_json_compact(c1.data, c1.len, &c2) == 0);
        check(same(&c1, &c2));
        if (c1.len > 0) {
            buf_init(&small, c1.len - 1);
            check(payload_json_compact(in, size, &small) == HERALD_ETOOBIG);
            check(small.len == 0);
            buf_release(&small);
        }
    } else {
        check(c1.len == 0);
    }

    rc = payload_render(PAYLOAD_COMPACT, in, size, &r);
    check(rc == rc1 && same(&r, &c1));

    buf_reset(&r);
    check(payload_render(PAYLOAD_RAW, in, size, &r) == 0);
    check(r.len == size && (size == 0 || memcmp(r.data, data, size) == 0));

    buf_reset(&r);
    rc = payload_render(PAYLOAD_MESSAGE, in, size, &r);
    check(rc == rc1);
    if (rc == 0) {
        buf_reset(&c2);
        check(payload_json_compact(r.data, r.len, &c2) == 0);
        check(same(&r, &c2));
    }

    buf_reset(&r);
    rc = payload_render(PAYLOAD_DATA, in, size, &r);
    check(rc == 0 || rc == HERALD_EPARSE);
    if (rc == 0) {
        check(rc1 == 0);
        buf_reset(&c2);
        check(payload_json_compact(r.data, r.len, &c2) == 0);
    }

    buf_release(&c1);
    buf_release(&c2);
    buf_release(&r);
    return 0;
}
