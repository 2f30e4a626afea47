/*
 * Operator commands that talk to Redis directly (synchronously, with a
 * timeout): `herald subs put|get|list|delete`, and the attempt-history and
 * redelivery commands. They share herald's config (--config FILE and the
 * HERALD_* environment), or take --redis URL.
 */
#ifndef HERALD_ADMIN_H
#define HERALD_ADMIN_H

/* argv[0] is "subs". Returns the process exit status: 0, 1 refused/failed, 2 usage. */
int admin_subs(int argc, char **argv, char **envp);

#endif
