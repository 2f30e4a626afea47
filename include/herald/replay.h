/*
 * Redelivery on demand: `herald resend` and `herald replay`.
 *
 * Neither delivers by itself. Both write retry records that are due now into
 * the first retry tier, with attempt 1 and a herald-manual header, so the
 * workers deliver them through the one delivery path that signs, guards,
 * records attempts and settles at least once. The webhook-id stays the
 * event's id, so receivers that already processed an event can recognise it.
 *
 *   herald resend --sub SUB --event ID          the latest attempt record of ID
 *   herald resend --sub SUB --attempt STREAM_ID one attempt record
 *   herald resend --sub SUB --topic T --partition P --offset O
 *   herald replay --sub SUB --since T [--until T] [--topic T] [--dry-run]
 *
 * Times are RFC 3339 ("2024-10-01T18:30:00Z"), unix seconds, or a duration
 * ago ("-2h"). Replay re-reads the events topics from the first offset at or
 * after --since (Kafka's timestamp index) up to --until (default: now) and
 * queues every event of the subscription's tenant that its filter matches.
 */
#ifndef HERALD_REPLAY_H
#define HERALD_REPLAY_H

int replay_resend(int argc, char **argv, char **envp);
int replay_replay(int argc, char **argv, char **envp);

#endif
