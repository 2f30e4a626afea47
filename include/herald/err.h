/*
 * herald status codes.
 *
 * Every fallible function in herald returns an int that is 0 on success and
 * one of the negative HERALD_E* codes below on failure (the CURLcode / libuv
 * convention). The codes and their messages are defined once, in the
 * HERALD_ERRNO_MAP X-macro, so the enum and herald_strerror() cannot drift.
 * A delivery outcome is not an error: see retry.h.
 */
#ifndef HERALD_ERR_H
#define HERALD_ERR_H

#define HERALD_ERRNO_MAP(XX)                                                                       \
    XX(NOMEM, "out of memory")                                                                     \
    XX(INVAL, "invalid argument")                                                                  \
    XX(PARSE, "malformed input")                                                                   \
    XX(TOOBIG, "input exceeds its size limit")                                                     \
    XX(RANGE, "value out of range")                                                                \
    XX(NOTFOUND, "not found")                                                                      \
    XX(EXISTS, "already exists")                                                                   \
    XX(IO, "input/output error")                                                                   \
    XX(TIMEOUT, "timed out")                                                                       \
    XX(REDIS, "redis error")                                                                       \
    XX(KAFKA, "kafka error")                                                                       \
    XX(CURL, "http client error")                                                                  \
    XX(CRYPTO, "cryptography error")                                                               \
    XX(REFUSED, "refused by policy")                                                               \
    XX(FULL, "capacity reached")                                                                   \
    XX(STATE, "operation not valid in this state")

enum herald_err {
    HERALD_OK = 0,
#define XX(name, msg) HERALD_E##name,
    HERALD_ERRNO_FIRST_ = -100,
    HERALD_ERRNO_MAP(XX)
#undef XX
};

/* Returns a static, human-readable message for a status code. */
const char *herald_strerror(int err);

#endif
