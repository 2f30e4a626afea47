/*
 * `herald run`: the worker.
 *
 * Ties the parts together on one event loop: the consumer hands over
 * messages; events are parsed (poison ones dead-lettered), matched against
 * the tenant's cached subscriptions and fanned out as jobs to the
 * dispatcher; retry records are held until due and then re-dispatched; every
 * outcome becomes an attempt record and, unless delivered, a retry or
 * dead-letter record. A consumed message is settled when all of its jobs
 * are, and only settled offsets are ever stored for commit.
 *
 * SIGTERM: stop fetching, let in-flight work finish until shutdown.timeout,
 * hand what is left to the retry tiers, commit, leave the group, exit 0.
 */
#ifndef HERALD_WORKER_H
#define HERALD_WORKER_H

#include "herald/config.h"

/* Runs the worker until SIGTERM/SIGINT; returns the process exit status. */
int worker_run(const struct config *cfg);

#endif
