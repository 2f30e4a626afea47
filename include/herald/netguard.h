/*
 * The SSRF guard's address policy: a pure classifier of socket addresses
 * and an allow-list of CIDR ranges.
 *
 * herald connects where strangers tell it to, so every address it is about
 * to connect to (the one libcurl's open-socket callback sees, after DNS) is
 * classified here. Anything that is not plainly a public unicast address is
 * refused unless delivery.allow_cidrs covers it. IPv6 forms that embed an
 * IPv4 address (mapped, NAT64, 6to4, Teredo) are classified by the embedded
 * address after normalising.
 */
#ifndef HERALD_NETGUARD_H
#define HERALD_NETGUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define NETGUARD_CLASS_MAP(XX)                                                                     \
    XX(PUBLIC, "public")                                                                           \
    XX(LOOPBACK, "loopback")                                                                       \
    XX(UNSPECIFIED, "unspecified")                                                                 \
    XX(PRIVATE, "private")                                                                         \
    XX(LINK_LOCAL, "link-local")                                                                   \
    XX(METADATA, "cloud-metadata")                                                                 \
    XX(CGNAT, "shared-address-space")                                                              \
    XX(MULTICAST, "multicast")                                                                     \
    XX(BROADCAST, "broadcast")                                                                     \
    XX(RESERVED, "reserved")                                                                       \
    XX(BENCHMARK, "benchmarking")                                                                  \
    XX(DOCUMENTATION, "documentation")                                                             \
    XX(OTHER, "non-global")

enum netguard_class {
#define XX(id, name) NETGUARD_##id,
    NETGUARD_CLASS_MAP(XX)
#undef XX
};

const char *netguard_class_name(enum netguard_class cls);

/* Classifies an AF_INET or AF_INET6 address; other families are OTHER. */
enum netguard_class netguard_classify(const struct sockaddr *sa, socklen_t len);

struct netguard;

/*
 * Builds a guard from a comma-separated list of CIDRs ("127.0.0.0/8,::1/128";
 * a bare address means a single host; empty or NULL allows nothing extra).
 * On a bad entry returns HERALD_EINVAL and names it in err.
 */
int netguard_new(const char *allow_cidrs, struct netguard **out, char *err, size_t errlen);
void netguard_free(struct netguard *ng);

/*
 * True when herald may connect to sa: the address is public, or an allowed
 * range contains it (checked on the address as given and on its embedded
 * IPv4 form). *cls, when non-NULL, receives the classification.
 */
bool netguard_allows(const struct netguard *ng, const struct sockaddr *sa, socklen_t len,
                     enum netguard_class *cls);

#endif
