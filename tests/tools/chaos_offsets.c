/*
 * chaos_offsets: a consumer group's committed offsets and each partition's
 * watermarks, for the chaos ledger (tests/chaos/ledger.py), which checks that
 * no offset is committed past an event that is not settled.
 *
 *   chaos_offsets BOOTSTRAP GROUP TOPIC PARTITIONS [TIMEOUT_MS]
 *
 * Prints one line per partition: "<partition> <committed> <low> <high>",
 * with -1 for "nothing committed" (exit 0); exit 1 when the broker does not
 * answer in time. It fetches the offsets with OffsetFetch and never joins the
 * group, so it does not disturb the workers it observes.
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    rd_kafka_topic_partition_list_t *parts;
    rd_kafka_resp_err_t err;
    char errstr[512];
    int nparts, timeout = 10000, status = 1;

    if (argc < 5 || argc > 6) {
        fprintf(stderr, "usage: chaos_offsets BOOTSTRAP GROUP TOPIC PARTITIONS [TIMEOUT_MS]\n");
        return 2;
    }
    nparts = atoi(argv[4]);
    if (argc == 6)
        timeout = atoi(argv[5]);
    if (nparts < 1 || nparts > 1000 || timeout < 1) {
        fprintf(stderr, "chaos_offsets: bad partition count or timeout\n");
        return 2;
    }
    conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "group.id", argv[2], errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr))) {
        fprintf(stderr, "chaos_offsets: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 2;
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "chaos_offsets: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    parts = rd_kafka_topic_partition_list_new(nparts);
    for (int i = 0; i < nparts; i++)
        rd_kafka_topic_partition_list_add(parts, argv[3], i);
    err = rd_kafka_committed(rk, parts, timeout);
    if (err) {
        fprintf(stderr, "chaos_offsets: committed offsets: %s\n", rd_kafka_err2str(err));
        goto out;
    }
    for (int i = 0; i < parts->cnt; i++) {
        int64_t lo = -1, hi = -1;
        err = rd_kafka_query_watermark_offsets(rk, argv[3], i, &lo, &hi, timeout);
        if (err) {
            fprintf(stderr, "chaos_offsets: watermarks of [%d]: %s\n", i, rd_kafka_err2str(err));
            goto out;
        }
        printf("%d %lld %lld %lld\n", i,
               (long long)(parts->elems[i].offset >= 0 ? parts->elems[i].offset : -1),
               (long long)lo, (long long)hi);
    }
    status = 0;
out:
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_destroy(rk);
    return status;
}
