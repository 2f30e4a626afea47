/*
 * The SSRF guard's address policy; see netguard.h. This file owns two things:
 * the decision tables that say which addresses are plainly public unicast,
 * and the parsed delivery.allow_cidrs list. It does no I/O and keeps no
 * global state, so the dispatcher's open-socket callback can call it on every
 * connect and a table-driven test can cover every range edge.
 *
 * Both address families are handled as big-endian byte strings (4 or 16
 * bytes), so one prefix matcher serves the built-in tables and the
 * allow-list alike. The tables are ordered and the first matching row wins,
 * which lets a single metadata host sit above the wider range it lives in.
 */
#include "herald/netguard.h"
#include "herald/err.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rule4 {
    uint8_t net[4];
    uint8_t len;
    enum netguard_class cls;
};

/*
 * IPv4 (RFC 6890 and the IANA special-purpose registry). Anything that
 * matches no row is PUBLIC. Rows are ordered so that /32 exceptions come
 * before the range that contains them.
 */
static const struct rule4 rules4[] = {
    {{0, 0, 0, 0}, 8, NETGUARD_UNSPECIFIED},       /* "this network", RFC 1122 */
    {{10, 0, 0, 0}, 8, NETGUARD_PRIVATE},          /* RFC 1918 */
    {{100, 100, 100, 200}, 32, NETGUARD_METADATA}, /* Alibaba Cloud metadata */
    {{100, 64, 0, 0}, 10, NETGUARD_CGNAT},         /* RFC 6598 shared address space */
    {{127, 0, 0, 0}, 8, NETGUARD_LOOPBACK},
    /*
     * Azure's WireServer is a Microsoft-owned, publicly numbered address that
     * only answers from inside Azure and hands out VM configuration, which
     * makes it a known SSRF target. No webhook receiver lives there.
     */
    {{168, 63, 129, 16}, 32, NETGUARD_METADATA},
    {{169, 254, 169, 254}, 32, NETGUARD_METADATA}, /* AWS, GCP, Azure, OCI, ... */
    {{169, 254, 170, 2}, 32, NETGUARD_METADATA},   /* AWS ECS task credentials */
    {{169, 254, 0, 0}, 16, NETGUARD_LINK_LOCAL},
    {{172, 16, 0, 0}, 12, NETGUARD_PRIVATE},
    {{192, 0, 0, 192}, 32, NETGUARD_METADATA}, /* Oracle Cloud legacy metadata */
    /*
     * IETF protocol assignments. A couple of anycast hosts in here
     * (192.0.0.9, .10) are global, but none is a webhook receiver, so the
     * whole block is refused rather than tracked host by host.
     */
    {{192, 0, 0, 0}, 24, NETGUARD_OTHER},
    {{192, 0, 2, 0}, 24, NETGUARD_DOCUMENTATION}, /* TEST-NET-1 */
    {{192, 88, 99, 0}, 24, NETGUARD_OTHER},       /* 6to4 relay anycast, RFC 7526 */
    {{192, 168, 0, 0}, 16, NETGUARD_PRIVATE},
    {{198, 18, 0, 0}, 15, NETGUARD_BENCHMARK},       /* RFC 2544 */
    {{198, 51, 100, 0}, 24, NETGUARD_DOCUMENTATION}, /* TEST-NET-2 */
    {{203, 0, 113, 0}, 24, NETGUARD_DOCUMENTATION},  /* TEST-NET-3 */
    {{224, 0, 0, 0}, 4, NETGUARD_MULTICAST},
    {{255, 255, 255, 255}, 32, NETGUARD_BROADCAST},
    {{240, 0, 0, 0}, 4, NETGUARD_RESERVED}, /* class E */
};

/* How a matching IPv6 row decides. */
enum how {
    FIXED,  /* the row's class */
    EMBED,  /* the class of the IPv4 address at v4_off; the row's class if that is public */
    TEREDO, /* both embedded addresses must be public; then the row's class */
};

struct rule6 {
    uint8_t net[16];
    uint8_t len;
    enum how how;
    uint8_t v4_off;
    enum netguard_class cls;
};

/*
 * IPv6 decision table (RFC 6890, RFC 4291, the IANA special-purpose
 * registry); first match wins and the last row catches everything.
 *
 *   range               how     embedded public ->  embedded not public ->
 *   ::ffff:0:0/96       EMBED   PUBLIC              its IPv4 class
 *   ::/96 (compatible)  EMBED   OTHER               its IPv4 class
 *   64:ff9b::/96        EMBED   PUBLIC              its IPv4 class
 *   2002::/16 (6to4)    EMBED   PUBLIC              its IPv4 class
 *   2001::/32 (Teredo)  TEREDO  OTHER               the IPv4 class
 *
 * Mapped: the kernel connects to the IPv4 address itself, so the IPv4
 * verdict is the whole answer. NAT64 well-known prefix: RFC 6052 forbids it
 * for non-global IPv4, and a translator carries the connection to exactly
 * that IPv4 host. 6to4: a global unicast address reached through a public
 * relay or, on a host with a sit tunnel, by encapsulating to the embedded
 * IPv4 address; that address decides. IPv4-compatible addresses are
 * deprecated (RFC 4291) and never routed as IPv6, but Linux's sit0 still
 * tunnels them to the embedded address, so a non-public one is refused with
 * its IPv4 class and a public one is refused as non-global.
 *
 * Teredo is refused outright. The service is defunct (public servers are
 * gone and Windows ships it disabled), so no real receiver lives there,
 * while on a host that runs a Teredo client the kernel would send UDP to
 * the obfuscated client address, which can be anything, including an
 * internal one. The embedded addresses are still classified so that the
 * refusal names the more telling reason (a Teredo address hiding 127.0.0.1
 * is logged as loopback).
 */
static const struct rule6 rules6[] = {
    {{0}, 128, FIXED, 0, NETGUARD_UNSPECIFIED},              /* :: */
    {{[15] = 1}, 128, FIXED, 0, NETGUARD_LOOPBACK},          /* ::1 */
    {{[10] = 0xff, 0xff}, 96, EMBED, 12, NETGUARD_PUBLIC},   /* IPv4-mapped */
    {{0}, 96, EMBED, 12, NETGUARD_OTHER},                    /* IPv4-compatible */
    {{0, 0x64, 0xff, 0x9b}, 96, EMBED, 12, NETGUARD_PUBLIC}, /* NAT64, RFC 6052 */
    /*
     * NAT64 local-use prefix (RFC 8215): the operator picks where in the /48
     * the IPv4 address sits, so it cannot be extracted reliably, and the
     * translator is by definition local.
     */
    {{0, 0x64, 0xff, 0x9b, 0, 1}, 48, FIXED, 0, NETGUARD_OTHER},
    {{0x01, 0x00}, 64, FIXED, 0, NETGUARD_OTHER},              /* discard-only, RFC 6666 */
    {{0x20, 0x02}, 16, EMBED, 2, NETGUARD_PUBLIC},             /* 6to4, RFC 3056 */
    {{0x20, 0x01, 0, 0}, 32, TEREDO, 0, NETGUARD_OTHER},       /* Teredo, RFC 4380 */
    {{0x20, 0x01, 0, 0x02}, 48, FIXED, 0, NETGUARD_BENCHMARK}, /* RFC 5180 */
    /*
     * The rest of the IETF protocol assignments block: a handful of anycast
     * and AS112 sub-blocks are global, none hosts webhook receivers.
     */
    {{0x20, 0x01}, 23, FIXED, 0, NETGUARD_OTHER},
    {{0x20, 0x01, 0x0d, 0xb8}, 32, FIXED, 0, NETGUARD_DOCUMENTATION}, /* RFC 3849 */
    {{0x3f, 0xff}, 20, FIXED, 0, NETGUARD_DOCUMENTATION},             /* RFC 9637 */
    /* AWS instance metadata over IPv6, fd00:ec2::254. */
    {{0xfd, 0x00, 0x0e, 0xc2, [14] = 0x02, 0x54}, 128, FIXED, 0, NETGUARD_METADATA},
    /* Google Cloud metadata over IPv6, fd20:ce::254. */
    {{0xfd, 0x20, 0x00, 0xce, [14] = 0x02, 0x54}, 128, FIXED, 0, NETGUARD_METADATA},
    {{0xfc}, 7, FIXED, 0, NETGUARD_PRIVATE}, /* unique local, RFC 4193 */
    {{0xfe, 0x80}, 10, FIXED, 0, NETGUARD_LINK_LOCAL},
    {{0xfe, 0xc0}, 10, FIXED, 0, NETGUARD_OTHER}, /* site-local, deprecated by RFC 3879 */
    {{0xff}, 8, FIXED, 0, NETGUARD_MULTICAST},
    /*
     * Every unicast allocation made so far is inside 2000::/3; the rest of
     * the space is unassigned, and an address there is not plainly public.
     */
    {{0x20}, 3, FIXED, 0, NETGUARD_PUBLIC},
    {{0}, 0, FIXED, 0, NETGUARD_RESERVED},
};

/* One allow-list entry; family is AF_INET (4 bytes of net) or AF_INET6. */
struct cidr {
    int family;
    uint8_t net[16];
    unsigned len;
};

struct netguard {
    size_t n;
    struct cidr ranges[];
};

/* Longest entry worth parsing: a full IPv6 text form plus "/128". */
#define CIDR_TEXT_MAX (INET6_ADDRSTRLEN + 4)
/* How much of a bad entry an error message quotes. */
#define ERR_QUOTE_MAX 64

const char *netguard_class_name(enum netguard_class cls)
{
    switch (cls) {
#define XX(id, name)                                                                               \
    case NETGUARD_##id:                                                                            \
        return name;
        NETGUARD_CLASS_MAP(XX)
#undef XX
    }
    return "unknown";
}

static bool prefix_match(const uint8_t *addr, const uint8_t *net, unsigned len)
{
    unsigned full = len / 8, rest = len % 8;
    if (memcmp(addr, net, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (addr[full] & mask) == (net[full] & mask);
}

static enum netguard_class classify4(const uint8_t *a4)
{
    for (size_t i = 0; i < sizeof(rules4) / sizeof(rules4[0]); i++) {
        if (prefix_match(a4, rules4[i].net, rules4[i].len))
            return rules4[i].cls;
    }
    return NETGUARD_PUBLIC;
}

static const struct rule6 *find_rule6(const uint8_t *a6)
{
    size_t i = 0;
    /* The last row has length 0 and matches anything, so this terminates. */
    while (!prefix_match(a6, rules6[i].net, rules6[i].len))
        i++;
    return &rules6[i];
}

static enum netguard_class classify6(const uint8_t *a6)
{
    const struct rule6 *r = find_rule6(a6);
    enum netguard_class cls;
    uint8_t v4[4];

    switch (r->how) {
    case FIXED:
        return r->cls;
    case EMBED:
        cls = classify4(a6 + r->v4_off);
        return cls == NETGUARD_PUBLIC ? r->cls : cls;
    case TEREDO:
        /* Server in bits 32..63; the client is stored inverted in the last 32. */
        cls = classify4(a6 + 4);
        if (cls != NETGUARD_PUBLIC)
            return cls;
        for (int i = 0; i < 4; i++)
            v4[i] = (uint8_t)~a6[12 + i];
        cls = classify4(v4);
        return cls == NETGUARD_PUBLIC ? r->cls : cls;
    }
    return NETGUARD_OTHER;
}

/*
 * Copies the address bytes out of sa into addr (4 or 16 bytes) and returns
 * the family, or 0 when sa is too short or not IP. memcpy rather than a cast
 * because the caller's buffer need not be aligned for sockaddr_in6.
 */
static int load_addr(const struct sockaddr *sa, socklen_t len, uint8_t addr[16])
{
    sa_family_t family;
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;

    if (!sa || (size_t)len < offsetof(struct sockaddr, sa_family) + sizeof(family))
        return 0;
    memcpy(&family, (const char *)sa + offsetof(struct sockaddr, sa_family), sizeof(family));
    if (family == AF_INET && (size_t)len >= sizeof(sin)) {
        memcpy(&sin, sa, sizeof(sin));
        memcpy(addr, &sin.sin_addr, 4);
        return AF_INET;
    }
    if (family == AF_INET6 && (size_t)len >= sizeof(sin6)) {
        memcpy(&sin6, sa, sizeof(sin6));
        memcpy(addr, &sin6.sin6_addr, 16);
        return AF_INET6;
    }
    return 0;
}

enum netguard_class netguard_classify(const struct sockaddr *sa, socklen_t len)
{
    uint8_t addr[16];

    switch (load_addr(sa, len, addr)) {
    case AF_INET:
        return classify4(addr);
    case AF_INET6:
        return classify6(addr);
    default:
        return NETGUARD_OTHER;
    }
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * Parses one trimmed entry of n bytes: an address, optionally followed by
 * "/len". The prefix length is plain decimal; host bits past it must be zero,
 * because "10.1.2.3/8" is far more likely a typo for a /32 than a wish to
 * open all of 10/8.
 */
static int parse_cidr(const char *entry, size_t n, struct cidr *c, char *err, size_t errlen)
{
    char text[CIDR_TEXT_MAX + 1];
    const char *why = "";
    char *slash;
    unsigned bits;

    if (n > CIDR_TEXT_MAX)
        goto bad;
    memcpy(text, entry, n);
    text[n] = '\0';
    slash = strchr(text, '/');
    if (slash)
        *slash = '\0';

    c->family = strchr(text, ':') ? AF_INET6 : AF_INET;
    bits = c->family == AF_INET6 ? 128 : 32;
    memset(c->net, 0, sizeof(c->net));
    if (inet_pton(c->family, text, c->net) != 1)
        goto bad;

    c->len = bits;
    if (slash) {
        const char *p = slash + 1;
        if (*p == '\0' || strlen(p) > 3)
            goto bad;
        for (c->len = 0; *p; p++) {
            if (*p < '0' || *p > '9')
                goto bad;
            c->len = c->len * 10 + (unsigned)(*p - '0');
        }
        if (c->len > bits)
            goto bad;
    }

    for (unsigned i = c->len / 8; i < bits / 8; i++) {
        uint8_t host = i == c->len / 8 ? (uint8_t)(0xff >> (c->len % 8)) : 0xff;
        if (c->net[i] & host) {
            why = " (host bits set)";
            goto bad;
        }
    }
    return 0;

bad:
    if (err && errlen)
        snprintf(err, errlen, "invalid CIDR \"%.*s%s\" in allow list%s",
                 (int)(n > ERR_QUOTE_MAX ? ERR_QUOTE_MAX : n), entry,
                 n > ERR_QUOTE_MAX ? "..." : "", why);
    return HERALD_EINVAL;
}

int netguard_new(const char *allow_cidrs, struct netguard **out, char *err, size_t errlen)
{
    struct netguard *ng = NULL;
    const char *p, *end;
    size_t slots = 1;
    int rc;

    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (!allow_cidrs)
        allow_cidrs = "";
    for (p = allow_cidrs; *p; p++)
        slots += *p == ',';

    if (slots > (SIZE_MAX - sizeof(*ng)) / sizeof(ng->ranges[0]))
        return HERALD_ENOMEM;
    ng = malloc(sizeof(*ng) + slots * sizeof(ng->ranges[0]));
    if (!ng)
        return HERALD_ENOMEM;
    ng->n = 0;

    for (p = allow_cidrs;; p = end + 1) {
        const char *q;
        end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        /*
         * Trim the entry. An empty one ("a,,b", a trailing comma, an empty
         * list) can only ever allow less, so it is skipped, not refused.
         */
        q = end;
        while (p < q && is_blank(*p))
            p++;
        while (q > p && is_blank(q[-1]))
            q--;
        if (q > p) {
            rc = parse_cidr(p, (size_t)(q - p), &ng->ranges[ng->n], err, errlen);
            if (rc)
                goto fail;
            ng->n++;
        }
        if (!*end)
            break;
    }
    *out = ng;
    return 0;

fail:
    netguard_free(ng);
    return rc;
}

void netguard_free(struct netguard *ng)
{
    free(ng);
}

static bool in_ranges(const struct netguard *ng, int family, const uint8_t *addr)
{
    for (size_t i = 0; i < ng->n; i++) {
        if (ng->ranges[i].family == family &&
            prefix_match(addr, ng->ranges[i].net, ng->ranges[i].len))
            return true;
    }
    return false;
}

/*
 * An IPv4 address and its IPv4-mapped form are one destination (the kernel
 * connects to the former either way), so an IPv4 host is allowed when an
 * IPv4 range covers it or an IPv6 range covers its mapped form: "::/0" and
 * "::ffff:127.0.0.0/104" allow 127.0.0.1 too.
 */
static bool allows4(const struct netguard *ng, const uint8_t *a4)
{
    uint8_t mapped[16] = {[10] = 0xff, 0xff};

    memcpy(mapped + 12, a4, 4);
    return in_ranges(ng, AF_INET, a4) || in_ranges(ng, AF_INET6, mapped);
}

bool netguard_allows(const struct netguard *ng, const struct sockaddr *sa, socklen_t len,
                     enum netguard_class *cls)
{
    uint8_t addr[16];
    const struct rule6 *r;
    enum netguard_class c;
    int family = load_addr(sa, len, addr);

    if (family == AF_INET)
        c = classify4(addr);
    else if (family == AF_INET6)
        c = classify6(addr);
    else
        c = NETGUARD_OTHER;
    if (cls)
        *cls = c;
    if (c == NETGUARD_PUBLIC)
        return true;
    /* A NULL guard is an empty allow list: public addresses only. */
    if (!ng || !family)
        return false;
    if (family == AF_INET)
        return allows4(ng, addr);
    if (in_ranges(ng, AF_INET6, addr))
        return true;
    /*
     * The embedded IPv4 address of the forms that carry exactly one (mapped,
     * compatible, NAT64, 6to4) is the host the connection ends up at, so
     * whatever allows that host allows them. Teredo is not normalised: it
     * carries two addresses and reaches neither directly, so only an IPv6
     * range can allow it.
     */
    r = find_rule6(addr);
    return r->how == EMBED && allows4(ng, addr + r->v4_off);
}
