/*
 * libFuzzer target for the SSRF guard (netguard.c).
 *
 * The same bytes are read three ways: as the first 4 and first 16 bytes of
 * an IPv4 and an IPv6 address, as a raw sockaddr of any family and length,
 * and (NUL-terminated) as a delivery.allow_cidrs string. Besides memory
 * safety it checks the properties the dispatcher relies on, and traps when
 * one breaks:
 *   - an address and its IPv4-mapped form get the same class and the same
 *     allow/refuse answer, under any allow list;
 *   - an IPv4 address keeps its class in the NAT64 and 6to4 forms, and
 *     whatever allows the IPv4 address allows those forms too;
 *   - netguard_allows agrees with netguard_classify, and says yes to every
 *     public address;
 *   - a refused allow list leaves *out NULL and a message naming the entry.
 */
#include "herald/err.h"
#include "herald/netguard.h"

#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

static void make_v4(struct sockaddr_in *sin, const uint8_t v4[4])
{
    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;
    memcpy(&sin->sin_addr, v4, 4);
}

static void make_v6(struct sockaddr_in6 *sin6, const uint8_t v6[16])
{
    memset(sin6, 0, sizeof(*sin6));
    sin6->sin6_family = AF_INET6;
    memcpy(&sin6->sin6_addr, v6, 16);
}

/* Classifies sa through both entry points and checks that they agree. */
static enum netguard_class check_one(const struct netguard *ng, const struct sockaddr *sa,
                                     socklen_t len, bool *allowed)
{
    enum netguard_class cls = netguard_classify(sa, len);
    enum netguard_class via_allows = NETGUARD_PUBLIC;
    const char *name = netguard_class_name(cls);

    CHECK(name && strcmp(name, "unknown") != 0);
    *allowed = netguard_allows(ng, sa, len, &via_allows);
    CHECK(via_allows == cls);
    CHECK(cls != NETGUARD_PUBLIC || *allowed);
    /* Without an allow list, only public addresses pass. */
    CHECK(netguard_allows(NULL, sa, len, NULL) == (cls == NETGUARD_PUBLIC));
    return cls;
}

static void check_addresses(const struct netguard *ng, const uint8_t *data, size_t size)
{
    uint8_t raw[16] = {0}, v6[16];
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    struct sockaddr_storage ss;
    enum netguard_class c4, c6;
    bool a4, a6;

    memcpy(raw, data, size < sizeof(raw) ? size : sizeof(raw));

    /* The bytes as an IPv4 address, and the same address mapped into IPv6. */
    make_v4(&sin, raw);
    c4 = check_one(ng, (const struct sockaddr *)&sin, sizeof(sin), &a4);
    memset(v6, 0, sizeof(v6));
    v6[10] = v6[11] = 0xff;
    memcpy(v6 + 12, raw, 4);
    make_v6(&sin6, v6);
    c6 = check_one(ng, (const struct sockaddr *)&sin6, sizeof(sin6), &a6);
    CHECK(c4 == c6);
    CHECK(a4 == a6);

    /* The NAT64 well-known prefix and 6to4 forms follow the IPv4 address. */
    memset(v6, 0, sizeof(v6));
    v6[1] = 0x64, v6[2] = 0xff, v6[3] = 0x9b;
    memcpy(v6 + 12, raw, 4);
    make_v6(&sin6, v6);
    c6 = check_one(ng, (const struct sockaddr *)&sin6, sizeof(sin6), &a6);
    CHECK(c6 == c4);
    CHECK(!a4 || a6);
    memset(v6, 0, sizeof(v6));
    v6[0] = 0x20, v6[1] = 0x02;
    memcpy(v6 + 2, raw, 4);
    memcpy(v6 + 6, raw + 4, 10);
    make_v6(&sin6, v6);
    c6 = check_one(ng, (const struct sockaddr *)&sin6, sizeof(sin6), &a6);
    CHECK(c6 == c4);
    CHECK(!a4 || a6);

    /* The bytes as an IPv6 address. */
    make_v6(&sin6, raw);
    (void)check_one(ng, (const struct sockaddr *)&sin6, sizeof(sin6), &a6);

    /* The bytes as a raw sockaddr of whatever family and length they claim. */
    memset(&ss, 0, sizeof(ss));
    memcpy(&ss, data, size < sizeof(ss) ? size : sizeof(ss));
    (void)check_one(ng, (const struct sockaddr *)&ss,
                    (socklen_t)(size < sizeof(ss) ? size : sizeof(ss)), &a6);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct netguard *ng = NULL;
    char err[256];
    char *text;
    int rc;

    text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    memset(err, 'x', sizeof(err));
    rc = netguard_new(text, &ng, err, sizeof(err));
    CHECK(memchr(err, '\0', sizeof(err)) != NULL);
    if (rc == 0) {
        CHECK(ng != NULL);
        CHECK(err[0] == '\0');
    } else {
        CHECK(rc == HERALD_EINVAL || rc == HERALD_ENOMEM);
        CHECK(ng == NULL);
        CHECK(rc != HERALD_EINVAL || strncmp(err, "invalid CIDR \"", 14) == 0);
    }

    /* Always with the (possibly NULL) guard, so refusal paths run too. */
    check_addresses(ng, data, size);

    netguard_free(ng);
    free(text);
    return 0;
}
