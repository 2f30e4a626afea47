/*
 * payload_tool: herald's payload rendering on stdin, for differential tests
 * (tests/integration/test_payload_node.py compares it with node).
 *
 *   payload_tool [raw|compact|data|message]      (default: compact)
 *
 * Input is a sequence of records "<length>\n<length bytes>", so documents
 * may hold any bytes, newlines included. For each record it writes
 * "<status> <length>\n<length bytes>", where status is 0 or a negative
 * HERALD_E* code (and length 0 on failure).
 */
#include "herald/buf.h"
#include "herald/err.h"
#include "herald/payload.h"

#include <stdio.h>
#include <stdlib.h>

#define TOOL_MAX_DOC (64u << 20)

int main(int argc, char **argv)
{
    enum payload_mode mode = PAYLOAD_COMPACT;
    struct buf out;
    char *doc = NULL;
    unsigned long n;
    int ret = 0;

    if (argc > 2 || (argc == 2 && payload_mode_parse(argv[1], &mode) != 0)) {
        fprintf(stderr, "usage: payload_tool [raw|compact|data|message]\n");
        return 2;
    }
    buf_init(&out, TOOL_MAX_DOC * 8);
    while (scanf("%lu", &n) == 1) {
        char *nd;
        int rc;

        if (getchar() != '\n' || n > TOOL_MAX_DOC) {
            fprintf(stderr, "payload_tool: bad record header\n");
            ret = 2;
            break;
        }
        nd = realloc(doc, n ? n : 1);
        if (!nd) {
            ret = 1;
            break;
        }
        doc = nd;
        if (fread(doc, 1, n, stdin) != n) {
            fprintf(stderr, "payload_tool: short record\n");
            ret = 2;
            break;
        }
        buf_reset(&out);
        rc = payload_render(mode, doc, n, &out);
        printf("%d %zu\n", rc, rc ? (size_t)0 : out.len);
        if (!rc && out.len)
            fwrite(out.data, 1, out.len, stdout);
    }
    free(doc);
    buf_release(&out);
    if (fflush(stdout) != 0)
        ret = 1;
    return ret;
}
