/*
 * Unit tests for the SSRF guard's address policy (netguard.c).
 *
 * The tables walk every special-purpose range at its edges: the first and
 * last address inside it and the neighbours just outside, so an off-by-one
 * in a prefix length shows up as a named failure. Each table loop reports
 * every mismatch before failing, so one run shows the whole damage.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "herald/err.h"
#include "herald/netguard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Builds a sockaddr from text; the test's own inputs, so a typo is fatal. */
static socklen_t make_sa(const char *text, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (strchr(text, ':')) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(443);
        if (inet_pton(AF_INET6, text, &sin6->sin6_addr) != 1)
            fail_msg("bad IPv6 literal in test table: \"%s\"", text);
        return sizeof(*sin6);
    }
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(443);
    if (inet_pton(AF_INET, text, &sin->sin_addr) != 1)
        fail_msg("bad IPv4 literal in test table: \"%s\"", text);
    return sizeof(*sin);
}

static enum netguard_class classify_text(const char *text)
{
    struct sockaddr_storage ss;
    socklen_t len = make_sa(text, &ss);
    return netguard_classify((const struct sockaddr *)&ss, len);
}

struct class_case {
    const char *addr;
    enum netguard_class cls;
};

#define PUB NETGUARD_PUBLIC

static const struct class_case ipv4_cases[] = {
    /* Well-known public resolvers. */
    {"8.8.8.8", PUB},
    {"1.1.1.1", PUB},
    {"9.9.9.9", PUB},
    /* 0.0.0.0/8 */
    {"0.0.0.0", NETGUARD_UNSPECIFIED},
    {"0.0.0.1", NETGUARD_UNSPECIFIED},
    {"0.255.255.255", NETGUARD_UNSPECIFIED},
    {"1.0.0.0", PUB},
    /* 10.0.0.0/8 */
    {"9.255.255.255", PUB},
    {"10.0.0.0", NETGUARD_PRIVATE},
    {"10.255.255.255", NETGUARD_PRIVATE},
    {"11.0.0.0", PUB},
    /* 100.64.0.0/10, with Alibaba's metadata host inside it */
    {"100.63.255.255", PUB},
    {"100.64.0.0", NETGUARD_CGNAT},
    {"100.100.100.199", NETGUARD_CGNAT},
    {"100.100.100.200", NETGUARD_METADATA},
    {"100.100.100.201", NETGUARD_CGNAT},
    {"100.127.255.255", NETGUARD_CGNAT},
    {"100.128.0.0", PUB},
    /* 127.0.0.0/8 */
    {"126.255.255.255", PUB},
    {"127.0.0.0", NETGUARD_LOOPBACK},
    {"127.0.0.1", NETGUARD_LOOPBACK},
    {"127.255.255.255", NETGUARD_LOOPBACK},
    {"128.0.0.0", PUB},
    /* Azure WireServer */
    {"168.63.129.15", PUB},
    {"168.63.129.16", NETGUARD_METADATA},
    {"168.63.129.17", PUB},
    /* 169.254.0.0/16 and the metadata hosts inside it */
    {"169.253.255.255", PUB},
    {"169.254.0.0", NETGUARD_LINK_LOCAL},
    {"169.254.169.253", NETGUARD_LINK_LOCAL},
    {"169.254.169.254", NETGUARD_METADATA},
    {"169.254.169.255", NETGUARD_LINK_LOCAL},
    {"169.254.170.1", NETGUARD_LINK_LOCAL},
    {"169.254.170.2", NETGUARD_METADATA},
    {"169.254.170.3", NETGUARD_LINK_LOCAL},
    {"169.254.255.255", NETGUARD_LINK_LOCAL},
    {"169.255.0.0", PUB},
    /* 172.16.0.0/12 */
    {"172.15.255.255", PUB},
    {"172.16.0.0", NETGUARD_PRIVATE},
    {"172.31.255.255", NETGUARD_PRIVATE},
    {"172.32.0.0", PUB},
    /* 192.0.0.0/24, with Oracle's legacy metadata host inside it */
    {"191.255.255.255", PUB},
    {"192.0.0.0", NETGUARD_OTHER},
    {"192.0.0.9", NETGUARD_OTHER},
    {"192.0.0.192", NETGUARD_METADATA},
    {"192.0.0.255", NETGUARD_OTHER},
    {"192.0.1.0", PUB},
    /* 192.0.2.0/24 */
    {"192.0.1.255", PUB},
    {"192.0.2.0", NETGUARD_DOCUMENTATION},
    {"192.0.2.255", NETGUARD_DOCUMENTATION},
    {"192.0.3.0", PUB},
    /* 192.88.99.0/24 */
    {"192.88.98.255", PUB},
    {"192.88.99.0", NETGUARD_OTHER},
    {"192.88.99.255", NETGUARD_OTHER},
    {"192.88.100.0", PUB},
    /* 192.168.0.0/16 */
    {"192.167.255.255", PUB},
    {"192.168.0.0", NETGUARD_PRIVATE},
    {"192.168.255.255", NETGUARD_PRIVATE},
    {"192.169.0.0", PUB},
    /* 198.18.0.0/15 */
    {"198.17.255.255", PUB},
    {"198.18.0.0", NETGUARD_BENCHMARK},
    {"198.19.255.255", NETGUARD_BENCHMARK},
    {"198.20.0.0", PUB},
    /* 198.51.100.0/24 */
    {"198.51.99.255", PUB},
    {"198.51.100.0", NETGUARD_DOCUMENTATION},
    {"198.51.100.255", NETGUARD_DOCUMENTATION},
    {"198.51.101.0", PUB},
    /* 203.0.113.0/24 */
    {"203.0.112.255", PUB},
    {"203.0.113.0", NETGUARD_DOCUMENTATION},
    {"203.0.113.255", NETGUARD_DOCUMENTATION},
    {"203.0.114.0", PUB},
    /* 224.0.0.0/4, 240.0.0.0/4, 255.255.255.255 */
    {"223.255.255.255", PUB},
    {"224.0.0.0", NETGUARD_MULTICAST},
    {"239.255.255.255", NETGUARD_MULTICAST},
    {"240.0.0.0", NETGUARD_RESERVED},
    {"255.255.255.254", NETGUARD_RESERVED},
    {"255.255.255.255", NETGUARD_BROADCAST},
};

static const struct class_case ipv6_cases[] = {
    /* Public examples. */
    {"2606:4700:4700::1111", PUB},
    {"2001:4860:4860::8888", PUB},
    {"2a00:1450:4001:80b::200e", PUB},
    /* ::, ::1 and the unassigned space around them */
    {"::", NETGUARD_UNSPECIFIED},
    {"::1", NETGUARD_LOOPBACK},
    {"::1:0:0:0", NETGUARD_RESERVED},
    {"::fffe:ffff:ffff", NETGUARD_RESERVED},
    /* 2000::/3 is the only public space */
    {"1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NETGUARD_RESERVED},
    {"2000::", PUB},
    {"3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", PUB},
    {"4000::", NETGUARD_RESERVED},
    {"e000::1", NETGUARD_RESERVED},
    /* 100::/64 discard-only */
    {"100::", NETGUARD_OTHER},
    {"100::ffff:ffff:ffff:ffff", NETGUARD_OTHER},
    {"100:0:0:1::", NETGUARD_RESERVED},
    /* fc00::/7, with the AWS and GCP metadata hosts inside it */
    {"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NETGUARD_RESERVED},
    {"fc00::", NETGUARD_PRIVATE},
    {"fd12:3456:789a::1", NETGUARD_PRIVATE},
    {"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NETGUARD_PRIVATE},
    {"fe00::", NETGUARD_RESERVED},
    {"fd00:ec2::253", NETGUARD_PRIVATE},
    {"fd00:ec2::254", NETGUARD_METADATA},
    {"fd00:ec2::255", NETGUARD_PRIVATE},
    {"fd20:ce::254", NETGUARD_METADATA},
    /* fe80::/10 */
    {"fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NETGUARD_RESERVED},
    {"fe80::", NETGUARD_LINK_LOCAL},
    {"fe80::1", NETGUARD_LINK_LOCAL},
    {"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NETGUARD_LINK_LOCAL},
    /* fec0::/10 site-local */
    {"fec0::", NETGUARD_OTHER},
    {"feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NETGUARD_OTHER},
    /* ff00::/8 */
    {"ff00::", NETGUARD_MULTICAST},
    {"ff02::1", NETGUARD_MULTICAST},
    {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NETGUARD_MULTICAST},
    /* 2001:db8::/32 */
    {"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", PUB},
    {"2001:db8::", NETGUARD_DOCUMENTATION},
    {"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", NETGUARD_DOCUMENTATION},
    {"2001:db9::", PUB},
    /* 3fff::/20, documentation since RFC 9637 */
    {"3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", PUB},
    {"3fff::", NETGUARD_DOCUMENTATION},
    {"3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", NETGUARD_DOCUMENTATION},
    {"3fff:1000::", PUB},
    /* 2001:2::/48 benchmarking, inside 2001::/23 */
    {"2001:1:ffff:ffff:ffff:ffff:ffff:ffff", NETGUARD_OTHER},
    {"2001:2::", NETGUARD_BENCHMARK},
    {"2001:2:0:ffff:ffff:ffff:ffff:ffff", NETGUARD_BENCHMARK},
    {"2001:2:1::", NETGUARD_OTHER},
    /* the rest of 2001::/23 */
    {"2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff", PUB},
    {"2001:1::1", NETGUARD_OTHER},
    {"2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", NETGUARD_OTHER},
    {"2001:200::", PUB},
};

/* Every IPv6 form that embeds an IPv4 address, public and not. */
static const struct class_case embed_cases[] = {
    /* IPv4-mapped ::ffff:0:0/96: the IPv4 verdict, public included. */
    {"::ffff:8.8.8.8", PUB},
    {"::ffff:1.1.1.1", PUB},
    {"::ffff:127.0.0.1", NETGUARD_LOOPBACK},
    {"::ffff:0.0.0.0", NETGUARD_UNSPECIFIED},
    {"::ffff:10.0.0.1", NETGUARD_PRIVATE},
    {"::ffff:172.16.0.1", NETGUARD_PRIVATE},
    {"::ffff:192.168.1.1", NETGUARD_PRIVATE},
    {"::ffff:169.254.169.254", NETGUARD_METADATA},
    {"::ffff:169.254.1.1", NETGUARD_LINK_LOCAL},
    {"::ffff:100.64.0.1", NETGUARD_CGNAT},
    {"::ffff:224.0.0.1", NETGUARD_MULTICAST},
    {"::ffff:255.255.255.255", NETGUARD_BROADCAST},
    {"::ffff:240.0.0.1", NETGUARD_RESERVED},
    {"::ffff:198.18.0.1", NETGUARD_BENCHMARK},
    {"::ffff:192.0.2.1", NETGUARD_DOCUMENTATION},
    {"::ffff:192.0.0.1", NETGUARD_OTHER},
    /* SIIT's ::ffff:0:0:0/96 is not the mapped prefix. */
    {"::ffff:0:8.8.8.8", NETGUARD_RESERVED},
    /* IPv4-compatible ::/96: deprecated, so a public one is non-global. */
    {"::8.8.8.8", NETGUARD_OTHER},
    {"::127.0.0.1", NETGUARD_LOOPBACK},
    {"::10.0.0.1", NETGUARD_PRIVATE},
    {"::169.254.169.254", NETGUARD_METADATA},
    {"::0.0.0.2", NETGUARD_UNSPECIFIED},
    {"::255.255.255.255", NETGUARD_BROADCAST},
    /* NAT64 well-known prefix 64:ff9b::/96 */
    {"64:ff9b::8.8.8.8", PUB},
    {"64:ff9b::808:808", PUB},
    {"64:ff9b::127.0.0.1", NETGUARD_LOOPBACK},
    {"64:ff9b::10.1.2.3", NETGUARD_PRIVATE},
    {"64:ff9b::169.254.169.254", NETGUARD_METADATA},
    {"64:ff9b::100.100.100.200", NETGUARD_METADATA},
    {"64:ff9b::0.0.0.0", NETGUARD_UNSPECIFIED},
    {"64:ff9b:0:0:1::808:808", NETGUARD_RESERVED},
    /* NAT64 local-use 64:ff9b:1::/48, never global */
    {"64:ff9b:1::8.8.8.8", NETGUARD_OTHER},
    {"64:ff9b:1::", NETGUARD_OTHER},
    {"64:ff9b:1:ffff:ffff:ffff:ffff:ffff", NETGUARD_OTHER},
    {"64:ff9b:2::", NETGUARD_RESERVED},
    /* 6to4 2002::/16, IPv4 in bits 16..47 */
    {"2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", PUB},
    {"2002:808:808::1", PUB},
    {"2002:101:101:1::1", PUB},
    {"2002:7f00:1::1", NETGUARD_LOOPBACK},
    {"2002:a00:1::", NETGUARD_PRIVATE},
    {"2002:c0a8:101::1", NETGUARD_PRIVATE},
    {"2002:a9fe:a9fe::", NETGUARD_METADATA},
    {"2002:6440:1::", NETGUARD_CGNAT},
    {"2002::", NETGUARD_UNSPECIFIED},
    {"2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NETGUARD_BROADCAST},
    {"2003::", PUB},
    /*
     * Teredo 2001::/32: server in bits 32..63, client inverted in the last
     * 32. Both public is still refused as non-global; a non-public one is
     * reported with its own class.
     */
    {"2001:0:4136:e378:8000:63bf:fefd:fcfb", NETGUARD_OTHER},     /* 65.54.227.120, 1.2.3.4 */
    {"2001:0:4136:e378:8000:63bf:80ff:fffe", NETGUARD_LOOPBACK},  /* client 127.0.0.1 */
    {"2001:0:4136:e378:8000:63bf:f5ff:fffe", NETGUARD_PRIVATE},   /* client 10.0.0.1 */
    {"2001:0:4136:e378:8000:63bf:5601:5601", NETGUARD_METADATA},  /* client 169.254.169.254 */
    {"2001:0:a00:1:8000:63bf:fefd:fcfb", NETGUARD_PRIVATE},       /* server 10.0.0.1 */
    {"2001:0:7f00:1:8000:63bf:f5ff:fffe", NETGUARD_LOOPBACK},     /* server first */
    {"2001:0:ffff:ffff:ffff:ffff:ffff:ffff", NETGUARD_BROADCAST}, /* server 255.255.255.255 */
    {"2001::", NETGUARD_UNSPECIFIED},                             /* server 0.0.0.0 */
    {"2001:0:808:808:0:0:f7f7:f7f7", NETGUARD_OTHER},             /* 8.8.8.8 both */
};

static int check_cases(const struct class_case *cases, size_t n)
{
    struct netguard *ng = NULL;
    int failures = 0;

    assert_int_equal(netguard_new(NULL, &ng, NULL, 0), 0);
    for (size_t i = 0; i < n; i++) {
        struct sockaddr_storage ss;
        socklen_t len = make_sa(cases[i].addr, &ss);
        enum netguard_class got = netguard_classify((const struct sockaddr *)&ss, len);
        enum netguard_class via_allows = NETGUARD_OTHER;
        bool allowed = netguard_allows(ng, (const struct sockaddr *)&ss, len, &via_allows);

        if (got != cases[i].cls) {
            print_error("%s: classified %s, want %s\n", cases[i].addr, netguard_class_name(got),
                        netguard_class_name(cases[i].cls));
            failures++;
        }
        /* With an empty allow list, allowed means public and nothing else. */
        if (via_allows != got || allowed != (got == NETGUARD_PUBLIC)) {
            print_error("%s: netguard_allows disagrees with netguard_classify\n", cases[i].addr);
            failures++;
        }
    }
    netguard_free(ng);
    return failures;
}

static void test_ipv4_ranges(void **state)
{
    (void)state;
    assert_int_equal(check_cases(ipv4_cases, ARRAY_LEN(ipv4_cases)), 0);
}

static void test_ipv6_ranges(void **state)
{
    (void)state;
    assert_int_equal(check_cases(ipv6_cases, ARRAY_LEN(ipv6_cases)), 0);
}

static void test_embedded_ipv4(void **state)
{
    (void)state;
    assert_int_equal(check_cases(embed_cases, ARRAY_LEN(embed_cases)), 0);
}

static void test_class_names(void **state)
{
    (void)state;
    assert_string_equal(netguard_class_name(NETGUARD_PUBLIC), "public");
    assert_string_equal(netguard_class_name(NETGUARD_LOOPBACK), "loopback");
    assert_string_equal(netguard_class_name(NETGUARD_METADATA), "cloud-metadata");
    assert_string_equal(netguard_class_name(NETGUARD_CGNAT), "shared-address-space");
    assert_string_equal(netguard_class_name(NETGUARD_OTHER), "non-global");
    assert_string_equal(netguard_class_name((enum netguard_class)99), "unknown");
}

/* Anything that is not a whole AF_INET/AF_INET6 sockaddr is OTHER and refused. */
static void test_not_ip(void **state)
{
    struct sockaddr_storage ss;
    struct sockaddr_un sun;
    socklen_t len;
    struct netguard *ng = NULL;
    enum netguard_class cls = NETGUARD_PUBLIC;
    (void)state;

    assert_int_equal(netguard_new("0.0.0.0/0,::/0", &ng, NULL, 0), 0);

    assert_int_equal(netguard_classify(NULL, 0), NETGUARD_OTHER);
    assert_false(netguard_allows(ng, NULL, 0, &cls));
    assert_int_equal(cls, NETGUARD_OTHER);

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, "/tmp/x");
    assert_int_equal(netguard_classify((const struct sockaddr *)&sun, sizeof(sun)), NETGUARD_OTHER);
    assert_false(netguard_allows(ng, (const struct sockaddr *)&sun, sizeof(sun), NULL));

    /* A length short of the family's sockaddr is not trusted. */
    len = make_sa("8.8.8.8", &ss);
    assert_int_equal(netguard_classify((const struct sockaddr *)&ss, len - 1), NETGUARD_OTHER);
    assert_int_equal(netguard_classify((const struct sockaddr *)&ss, 1), NETGUARD_OTHER);
    assert_int_equal(netguard_classify((const struct sockaddr *)&ss, 0), NETGUARD_OTHER);
    assert_false(netguard_allows(ng, (const struct sockaddr *)&ss, len - 1, NULL));
    len = make_sa("2606:4700:4700::1111", &ss);
    assert_int_equal(netguard_classify((const struct sockaddr *)&ss, sizeof(struct sockaddr_in)),
                     NETGUARD_OTHER);
    assert_int_equal(netguard_classify((const struct sockaddr *)&ss, len), NETGUARD_PUBLIC);
    netguard_free(ng);
}

/* The guard reads sockaddrs from any buffer, aligned or not. */
static void test_unaligned(void **state)
{
    struct sockaddr_storage ss;
    unsigned char raw[sizeof(struct sockaddr_in6) + 1];
    socklen_t len = make_sa("::ffff:169.254.169.254", &ss);
    (void)state;

    memcpy(raw + 1, &ss, len);
    assert_int_equal(netguard_classify((const struct sockaddr *)(void *)(raw + 1), len),
                     NETGUARD_METADATA);
}

struct allow_case {
    const char *list;
    const char *addr;
    bool allowed;
};

static const struct allow_case allow_cases[] = {
    /* Public addresses need no allow list. */
    {"", "8.8.8.8", true},
    {"", "1.1.1.1", true},
    {"", "2606:4700:4700::1111", true},
    {"", "127.0.0.1", false},
    {NULL, "10.0.0.1", false},
    {" , ,", "10.0.0.1", false},
    /* An IPv4 range covers the IPv6 forms that embed an address in it. */
    {"127.0.0.0/8", "127.0.0.1", true},
    {"127.0.0.0/8", "127.255.255.255", true},
    {"127.0.0.0/8", "::ffff:127.0.0.1", true},
    {"127.0.0.0/8", "::127.0.0.1", true},
    {"127.0.0.0/8", "64:ff9b::127.0.0.1", true},
    {"127.0.0.0/8", "2002:7f00:1::1", true},
    {"127.0.0.0/8", "::1", false},
    {"127.0.0.0/8", "10.0.0.1", false},
    {"127.0.0.0/8", "::ffff:10.0.0.1", false},
    {"127.0.0.0/8", "2001:0:4136:e378:8000:63bf:80ff:fffe", false}, /* Teredo */
    {"127.0.0.0/8", "8.8.8.8", true},
    /* IPv6 ranges */
    {"::1", "::1", true},
    {"::1", "127.0.0.1", false},
    {"::1/128", "::1", true},
    {"fd00::/8", "fd12:3456::1", true},
    {"fd00::/8", "fd00:ec2::254", true},
    {"fd00::/8", "fc00::1", false},
    {"fc00::/7", "fc00::1", true},
    {"fe80::/10", "fe80::1", true},
    {"fe80::/10", "febf::1", true},
    {"fe80::/10", "fec0::1", false},
    {"2001::/32", "2001:0:4136:e378:8000:63bf:80ff:fffe", true},
    {"::/0", "::ffff:127.0.0.1", true},
    /* ...and an IPv4 host is one destination with its mapped form. */
    {"::/0", "127.0.0.1", true},
    {"::ffff:0:0/96", "10.0.0.1", true},
    {"::ffff:127.0.0.0/104", "127.0.0.1", true},
    {"::ffff:127.0.0.0/104", "64:ff9b::127.0.0.1", true},
    {"::ffff:127.0.0.0/104", "2002:7f00:1::", true},
    {"::ffff:127.0.0.0/104", "::1", false},
    {"::/80", "10.0.0.1", true},
    {"::/80", "64:ff9b::10.0.0.1", true},
    {"::/81", "10.0.0.1", false},
    {"fe80::/10", "169.254.1.1", false},
    /* An IPv4-mapped range covers its IPv4 range. */
    {"::ffff:192.168.0.0/112", "192.168.1.1", true},
    {"::ffff:192.168.0.0/112", "::ffff:192.168.1.1", true},
    {"::ffff:192.168.0.0/112", "192.169.0.1", true}, /* public anyway */
    {"::ffff:192.168.0.0/112", "10.0.0.1", false},
    {"::ffff:127.0.0.1", "127.0.0.1", true},
    {"::ffff:127.0.0.1", "127.0.0.2", false},
    /* Bare addresses are host routes. */
    {"10.1.2.3", "10.1.2.3", true},
    {"10.1.2.3", "10.1.2.4", false},
    {"10.1.2.3", "10.1.2.2", false},
    {"10.1.2.3", "::ffff:10.1.2.3", true},
    {"10.1.2.3/32", "10.1.2.3", true},
    /* Range edges. */
    {"172.16.0.0/12", "172.16.0.0", true},
    {"172.16.0.0/12", "172.31.255.255", true},
    {"172.16.0.0/13", "172.24.0.0", false},
    {"100.64.0.0/10", "100.127.255.255", true},
    {"10.0.0.0/9", "10.128.0.0", false},
    {"10.0.0.0/9", "10.127.255.255", true},
    /* Allow-listing a range is the operator's call, metadata included. */
    {"169.254.169.254/32", "169.254.169.254", true},
    {"169.254.169.254/32", "169.254.169.253", false},
    {"0.0.0.0/0", "169.254.169.254", true},
    {"0.0.0.0/0", "::ffff:169.254.169.254", true},
    /* Several entries; whitespace around them and empty entries are fine. */
    {" 10.0.0.0/8 ,\t192.168.0.0/16 , fe80::/10 ", "192.168.7.7", true},
    {" 10.0.0.0/8 ,\t192.168.0.0/16 , fe80::/10 ", "10.9.9.9", true},
    {" 10.0.0.0/8 ,\t192.168.0.0/16 , fe80::/10 ", "fe80::9", true},
    {" 10.0.0.0/8 ,\t192.168.0.0/16 , fe80::/10 ", "172.16.0.1", false},
    {"10.0.0.0/8,,", "10.0.0.1", true},
    {",10.0.0.0/8", "10.0.0.1", true},
    {"\n10.0.0.0/8\r\n", "10.0.0.1", true},
    {"10.0.0.0/008", "10.0.0.1", true},
};

static void test_allow_list(void **state)
{
    int failures = 0;
    (void)state;

    for (size_t i = 0; i < ARRAY_LEN(allow_cases); i++) {
        const struct allow_case *c = &allow_cases[i];
        struct netguard *ng = NULL;
        struct sockaddr_storage ss;
        socklen_t len = make_sa(c->addr, &ss);
        char err[256] = "untouched";
        enum netguard_class cls = NETGUARD_OTHER;

        int rc = netguard_new(c->list, &ng, err, sizeof(err));
        if (rc != 0) {
            print_error("\"%s\": netguard_new failed: %s\n", c->list, err);
            failures++;
            continue;
        }
        assert_string_equal(err, "");
        bool allowed = netguard_allows(ng, (const struct sockaddr *)&ss, len, &cls);
        if (allowed != c->allowed) {
            print_error("list \"%s\", %s: allowed=%d, want %d\n", c->list ? c->list : "(null)",
                        c->addr, allowed, c->allowed);
            failures++;
        }
        /* The class is reported whatever the allow list says. */
        if (cls != classify_text(c->addr)) {
            print_error("list \"%s\", %s: wrong class reported\n", c->list ? c->list : "(null)",
                        c->addr);
            failures++;
        }
        netguard_free(ng);
    }
    assert_int_equal(failures, 0);
}

/* A NULL guard means no allow list at all. */
static void test_null_guard(void **state)
{
    struct sockaddr_storage ss;
    socklen_t len;
    (void)state;

    len = make_sa("1.1.1.1", &ss);
    assert_true(netguard_allows(NULL, (const struct sockaddr *)&ss, len, NULL));
    len = make_sa("127.0.0.1", &ss);
    assert_false(netguard_allows(NULL, (const struct sockaddr *)&ss, len, NULL));
    netguard_free(NULL);
}

struct bad_case {
    const char *list;
    const char *err;
};

static const struct bad_case bad_cases[] = {
    {"10.0.0.0/33", "invalid CIDR \"10.0.0.0/33\" in allow list"},
    {"::/129", "invalid CIDR \"::/129\" in allow list"},
    {"10.0.0.0/", "invalid CIDR \"10.0.0.0/\" in allow list"},
    {"10.0.0.0/-1", "invalid CIDR \"10.0.0.0/-1\" in allow list"},
    {"10.0.0.0/+8", "invalid CIDR \"10.0.0.0/+8\" in allow list"},
    {"10.0.0.0/0x8", "invalid CIDR \"10.0.0.0/0x8\" in allow list"},
    {"10.0.0.0/0008", "invalid CIDR \"10.0.0.0/0008\" in allow list"},
    {"10.0.0.0/8/8", "invalid CIDR \"10.0.0.0/8/8\" in allow list"},
    {"10.0.0.0 /8", "invalid CIDR \"10.0.0.0 /8\" in allow list"},
    {"10.0.0.0/ 8", "invalid CIDR \"10.0.0.0/ 8\" in allow list"},
    {"/8", "invalid CIDR \"/8\" in allow list"},
    {"localhost", "invalid CIDR \"localhost\" in allow list"},
    {"10.0.0", "invalid CIDR \"10.0.0\" in allow list"},
    {"10", "invalid CIDR \"10\" in allow list"},
    {"1.2.3.4.5", "invalid CIDR \"1.2.3.4.5\" in allow list"},
    {"256.0.0.0/8", "invalid CIDR \"256.0.0.0/8\" in allow list"},
    {"0177.0.0.1", "invalid CIDR \"0177.0.0.1\" in allow list"},
    {"0x7f.0.0.1", "invalid CIDR \"0x7f.0.0.1\" in allow list"},
    {"fe80::1%eth0", "invalid CIDR \"fe80::1%eth0\" in allow list"},
    {"[::1]", "invalid CIDR \"[::1]\" in allow list"},
    {"1::2::3", "invalid CIDR \"1::2::3\" in allow list"},
    {"10.0.0.0/8;192.168.0.0/16", "invalid CIDR \"10.0.0.0/8;192.168.0.0/16\" in allow list"},
    /* The bad entry is named, not the list. */
    {"10.0.0.0/8, bogus ,::1", "invalid CIDR \"bogus\" in allow list"},
    {"::1,127.0.0.1/40", "invalid CIDR \"127.0.0.1/40\" in allow list"},
    /* Host bits past the prefix are most likely a typo. */
    {"10.0.0.1/8", "invalid CIDR \"10.0.0.1/8\" in allow list (host bits set)"},
    {"192.168.1.0/23", "invalid CIDR \"192.168.1.0/23\" in allow list (host bits set)"},
    {"fe80::1/10", "invalid CIDR \"fe80::1/10\" in allow list (host bits set)"},
    {"::1/0", "invalid CIDR \"::1/0\" in allow list (host bits set)"},
    /* Long garbage is quoted, but only so much of it. */
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     "invalid CIDR \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\" "
     "in allow list"},
};

static void test_bad_entries(void **state)
{
    int failures = 0;
    (void)state;

    for (size_t i = 0; i < ARRAY_LEN(bad_cases); i++) {
        struct netguard *ng = (struct netguard *)&failures; /* must be reset to NULL */
        char err[256] = "";

        int rc = netguard_new(bad_cases[i].list, &ng, err, sizeof(err));
        if (rc != HERALD_EINVAL || ng != NULL || strcmp(err, bad_cases[i].err) != 0) {
            print_error("\"%s\": rc=%d err=\"%s\", want EINVAL and \"%s\"\n", bad_cases[i].list, rc,
                        err, bad_cases[i].err);
            failures++;
            if (rc == 0)
                netguard_free(ng);
        }
    }
    assert_int_equal(failures, 0);
}

/* err may be absent or tiny; a bad entry is still refused. */
static void test_error_buffer(void **state)
{
    struct netguard *ng = NULL;
    char small[8];
    (void)state;

    assert_int_equal(netguard_new("nope", &ng, NULL, 0), HERALD_EINVAL);
    assert_null(ng);
    memset(small, 'x', sizeof(small));
    assert_int_equal(netguard_new("nope", &ng, small, sizeof(small)), HERALD_EINVAL);
    assert_string_equal(small, "invalid");
    assert_null(ng);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4_ranges),   cmocka_unit_test(test_ipv6_ranges),
        cmocka_unit_test(test_embedded_ipv4), cmocka_unit_test(test_class_names),
        cmocka_unit_test(test_not_ip),        cmocka_unit_test(test_unaligned),
        cmocka_unit_test(test_allow_list),    cmocka_unit_test(test_null_guard),
        cmocka_unit_test(test_bad_entries),   cmocka_unit_test(test_error_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
