/*
 * libFuzzer target for Retry-After parsing (retry_parse_after in retry.c).
 *
 * A receiver chooses this header, so every value must give either a usable
 * delay or HERALD_EINVAL, never undefined behaviour (the build runs under
 * UBSan) or a negative wait. Checked, at several clock readings:
 *   - the answer is 0 or HERALD_EINVAL, *delay_ms untouched on refusal;
 *   - an accepted delay is >= 0, and one given in seconds (digits with
 *     optional blanks around) is exactly those seconds; absurd values are
 *     refused (retry.c checks its 10^8 s cap before adding the last digit,
 *     so up to 10^9 + 9 s pass, which the longest retry tier absorbs);
 *   - an HTTP-date gives the same instant at any clock reading: the delay
 *     shrinks by exactly the time that passed, down to zero;
 *   - parsing is deterministic, and a value with a NUL inside is read up to
 *     the NUL (what curl hands the header callback never holds one).
 */
#include "herald/err.h"
#include "herald/retry.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

#define SENTINEL INT64_C(-424242)

/* Seconds when s is blanks, digits, blanks; -1 otherwise (or when too long to matter). */
static int64_t plain_seconds(const char *s)
{
    int64_t v = 0;
    size_t digits = 0;
    while (*s == ' ' || *s == '\t')
        s++;
    for (; isdigit((unsigned char)*s); s++, digits++) {
        if (digits >= 15)
            return -2;
        v = v * 10 + (*s - '0');
    }
    while (*s == ' ' || *s == '\t')
        s++;
    return digits && !*s ? v : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int64_t clocks[] = {0, INT64_C(1700000000000), INT64_C(1700000000123),
                                     INT64_C(4102444800000)};
    int64_t delays[sizeof(clocks) / sizeof(clocks[0])];
    char *text;
    int rc0 = 0;
    int64_t secs;

    text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    secs = plain_seconds(text);

    for (size_t i = 0; i < sizeof(clocks) / sizeof(clocks[0]); i++) {
        int64_t d = SENTINEL, again = SENTINEL;
        int rc = retry_parse_after(text, clocks[i], &d);
        CHECK(rc == 0 || rc == HERALD_EINVAL);
        CHECK(retry_parse_after(text, clocks[i], &again) == rc && again == d);
        if (i == 0)
            rc0 = rc;
        CHECK(rc == rc0); /* the clock never decides whether a value is valid */
        if (rc != 0) {
            CHECK(d == SENTINEL);
            delays[i] = -1;
            continue;
        }
        CHECK(d >= 0);
        delays[i] = d;
        if (secs >= 0) {
            CHECK(secs <= 1000000009);
            CHECK(d == secs * 1000);
        }
    }
    if (rc0 == 0 && secs == -1) {
        /* An HTTP-date names one instant: later clocks wait less, by exactly the difference. */
        for (size_t i = 1; i < sizeof(clocks) / sizeof(clocks[0]); i++) {
            int64_t at_prev = delays[i - 1] + clocks[i - 1];
            if (delays[i] > 0 && delays[i - 1] > 0)
                CHECK(delays[i] + clocks[i] == at_prev);
            CHECK(delays[i] <= delays[i - 1]);
        }
    }
    free(text);
    return 0;
}
