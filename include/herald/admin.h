/*
 * Operator commands that talk to Redis directly (synchronously, with a
 * timeout): `herald subs put|get|list|delete`, and the attempt-history and
 * redelivery commands. They share herald's config (--config FILE and the
 * HERALD_* environment), or take --redis URL.
 */
#ifndef HERALD_ADMIN_H
#define HERALD_ADMIN_H

#include <hiredis/hiredis.h>
#include <stdbool.h>

#include "herald/config.h"

/* What every operator command shares: the effective config and a Redis connection. */
struct admin_ctx {
    struct config cfg;
    redisContext *rc;
};

/* Loads defaults, the optional file, HERALD_* and the optional --redis URL; 0 or exit status. */
int admin_ctx_init(struct admin_ctx *a, const char *config_path, const char *redis_url,
                   char **envp);
/* Connects (AUTH/SELECT from the URL); 0 or an exit status with the error printed. */
int admin_redis(struct admin_ctx *a);
void admin_ctx_release(struct admin_ctx *a);
/* Runs a command; prints and returns NULL on an error reply or a dead connection. */
redisReply *admin_command(struct admin_ctx *a, const char *fmt, ...);

/* argv[0] is "subs". Returns the process exit status: 0, 1 refused/failed, 2 usage. */
int admin_subs(int argc, char **argv, char **envp);

/* argv[0] is "attempts": herald attempts SUB [--failed] [--limit N] [--json]. */
int admin_attempts(int argc, char **argv, char **envp);

#endif
