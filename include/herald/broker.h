/*
 * `herald broker`: an embedded Kafka for development and tests.
 *
 * It wraps librdkafka's mock cluster, a real Kafka-protocol server on
 * loopback: producers, consumer groups, offset commits and the idempotent
 * producer all work over the wire. It prints its bootstrap servers as the
 * first line on stdout and serves until SIGTERM or SIGINT.
 *
 * With --control it also reads fault-injection commands on stdin, one per
 * line, answering "ok" or "error: ..." on stdout:
 *   down <broker|all>            take brokers down (connections refused/closed)
 *   up <broker|all>              bring them back
 *   rtt <broker|all> <ms>        add round-trip latency
 *   errors <apikey> <err> <n>    the next n requests of an API fail with err
 *   clear <apikey>               drop queued request errors
 *   topic-error <topic> <err>    topic-level error on metadata
 * API keys and errors are Kafka protocol numbers (Produce 0, Fetch 1,
 * OffsetCommit 8, ...; error 6 NOT_LEADER_FOR_PARTITION, 7 REQUEST_TIMED_OUT).
 */
#ifndef HERALD_BROKER_H
#define HERALD_BROKER_H

/* argv[0] is "broker". Returns the process exit status. */
int broker_main(int argc, char **argv);

#endif
