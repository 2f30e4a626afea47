/*
 * bench_producer: the event source of the benchmark (bench/README.md).
 *
 *   bench_producer -b BOOTSTRAP -t TOPIC [--partitions N] [--size BYTES]
 *                  [--tenant T] [--id-prefix P] [--duration S] [--linger-ms MS]
 *                  ( --rate EVENTS_PER_S
 *                  | --ramp RATE:SECONDS[,RATE:SECONDS...]
 *                  | --window DELIVERIES --stats FILE [--fanout F] [--count-paths N] )
 *
 * Every event is a valid herald envelope of exactly --size bytes whose data
 * carries its creation time, "created_us":"<wall-clock microseconds>", taken
 * just before the record is handed to librdkafka; bench_receiver subtracts
 * it from the arrival time. Records go round-robin over the partitions.
 *
 * Open loop (--rate, --ramp) paces records on the clock whatever herald
 * does: that is what a latency measurement needs. Closed loop (--window)
 * keeps herald's backlog at about DELIVERIES outstanding deliveries by
 * reading the receiver's answered counter from its stats file (divided by
 * --fanout deliveries per event; with --count-paths N, only the answers to
 * /s0../s<N-1> count): herald always has work queued, yet the
 * backlog stays well inside the few MB per partition that `herald broker`
 * keeps, so nothing is dropped before herald reads it.
 *
 * At the end it prints one JSON line: records produced and failed, seconds.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define STAT_ANSWERED 2
#define STAT_PATHS    16
#define MAX_STEPS     32

struct step {
    double rate;
    double seconds;
};

static volatile sig_atomic_t stop;
static uint64_t delivered_ok, delivered_failed;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nap_us(long us)
{
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

static void on_dr(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (rkm->err)
        delivered_failed++;
    else
        delivered_ok++;
}

static const volatile uint64_t *map_stats(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    void *p;
    if (fd < 0) {
        perror(path);
        exit(2);
    }
    p = mmap(NULL, 16384, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(2);
    }
    return p;
}

/* Requests answered: all of them, or those to /s0../s<paths-1>. */
static uint64_t answered(const volatile uint64_t *stats, int paths)
{
    uint64_t n = 0;
    if (paths == 0)
        return stats[STAT_ANSWERED];
    for (int i = 0; i < paths; i++)
        n += stats[STAT_PATHS + i];
    return n;
}

static int parse_ramp(char *s, struct step *steps)
{
    int n = 0;
    for (char *tok = strtok(s, ","); tok && n < MAX_STEPS; tok = strtok(NULL, ",")) {
        char *colon = strchr(tok, ':');
        if (!colon)
            return -1;
        steps[n].rate = atof(tok);
        steps[n].seconds = atof(colon + 1);
        n++;
    }
    return n;
}

/* The event template; id digits and created_us digits are rewritten in place per record. */
struct tmpl {
    char *buf;
    size_t len;
    size_t id_at; /* 12 digits */
    size_t ts_at; /* 16 digits */
};

static int tmpl_build(struct tmpl *t, size_t size, const char *tenant, const char *prefix)
{
    char head[512];
    int hlen =
        snprintf(head, sizeof(head),
                 "{\"id\":\"evt_%s_000000000000\",\"type\":\"bench.event\",\"tenant\":\"%s\","
                 "\"timestamp\":\"2024-10-01T18:30:03Z\",\"data\":{\"created_us\":"
                 "\"0000000000000000\",\"pad\":\"",
                 prefix, tenant);
    const char tail[] = "\"}}";
    size_t fixed = (size_t)hlen + sizeof(tail) - 1;
    if (hlen < 0 || (size_t)hlen >= sizeof(head) || size < fixed)
        return -1;
    t->len = size;
    t->buf = malloc(size + 1);
    if (!t->buf)
        return -1;
    memcpy(t->buf, head, (size_t)hlen);
    memset(t->buf + hlen, 'x', size - fixed);
    memcpy(t->buf + size - (sizeof(tail) - 1), tail, sizeof(tail) - 1);
    t->buf[size] = '\0';
    t->id_at = (size_t)(strstr(t->buf, "_000000000000\"") - t->buf) + 1;
    t->ts_at = (size_t)(strstr(t->buf, "\"created_us\":\"") - t->buf) + 14;
    return 0;
}

static void put_digits(char *at, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        at[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

static void produce_one(rd_kafka_t *rk, rd_kafka_topic_t *rkt, struct tmpl *t, uint64_t seq,
                        int partitions)
{
    put_digits(t->buf + t->id_at, seq, 12);
    for (;;) {
        put_digits(t->buf + t->ts_at, (uint64_t)wall_us(), 16);
        if (rd_kafka_produce(rkt, (int32_t)(seq % (uint64_t)partitions), RD_KAFKA_MSG_F_COPY,
                             t->buf, t->len, NULL, 0, NULL) == 0)
            return;
        if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            fprintf(stderr, "bench_producer: produce: %s\n",
                    rd_kafka_err2str(rd_kafka_last_error()));
            exit(1);
        }
        rd_kafka_poll(rk, 1);
    }
}

int main(int argc, char **argv)
{
    const char *bootstrap = NULL, *topic = NULL, *tenant = "bench", *prefix = "b";
    const char *stats_path = NULL, *linger = "1";
    char *ramp = NULL;
    struct step steps[MAX_STEPS];
    int nsteps = 0, partitions = 1, count_paths = 0;
    double rate = 0, duration = 10, fanout = 1, window = 0, t0, elapsed;
    size_t size = 1024;
    uint64_t produced = 0, base = 0;
    const volatile uint64_t *stats = NULL;
    char errstr[512];
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    struct tmpl t;

    /* Every option takes a value: options and values come in pairs. */
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            goto usage;
        if (strcmp(a, "-b") == 0)
            bootstrap = v;
        else if (strcmp(a, "-t") == 0)
            topic = v;
        else if (strcmp(a, "--partitions") == 0)
            partitions = atoi(v);
        else if (strcmp(a, "--size") == 0)
            size = (size_t)atol(v);
        else if (strcmp(a, "--tenant") == 0)
            tenant = v;
        else if (strcmp(a, "--id-prefix") == 0)
            prefix = v;
        else if (strcmp(a, "--duration") == 0)
            duration = atof(v);
        else if (strcmp(a, "--rate") == 0)
            rate = atof(v);
        else if (strcmp(a, "--ramp") == 0)
            ramp = argv[i + 1];
        else if (strcmp(a, "--window") == 0)
            window = atof(v);
        else if (strcmp(a, "--stats") == 0)
            stats_path = v;
        else if (strcmp(a, "--fanout") == 0)
            fanout = atof(v);
        else if (strcmp(a, "--linger-ms") == 0)
            linger = v;
        else if (strcmp(a, "--count-paths") == 0)
            count_paths = atoi(v);
        else
            goto usage;
    }
    if (!bootstrap || !topic || partitions < 1 || fanout <= 0 ||
        (rate <= 0 && !ramp && (window <= 0 || !stats_path)))
        goto usage;
    if (ramp) {
        nsteps = parse_ramp(ramp, steps);
        if (nsteps <= 0)
            goto usage;
        duration = 0;
        for (int i = 0; i < nsteps; i++)
            duration += steps[i].seconds;
    }
    if (tmpl_build(&t, size, tenant, prefix)) {
        fprintf(stderr, "bench_producer: --size %zu is too small for an envelope\n", size);
        return 2;
    }
    if (count_paths < 0 || count_paths > 1024)
        goto usage;
    if (stats_path) {
        stats = map_stats(stats_path);
        base = answered(stats, count_paths);
    }

    conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "linger.ms", linger, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "batch.num.messages", "10000", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "queue.buffering.max.messages", "1000000", errstr,
                          sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "queue.buffering.max.kbytes", "1048576", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "acks", "all", errstr, sizeof(errstr))) {
        fprintf(stderr, "bench_producer: %s\n", errstr);
        return 2;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_dr);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "bench_producer: %s\n", errstr);
        return 1;
    }
    rkt = rd_kafka_topic_new(rk, topic, NULL);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);

    t0 = mono_s();
    while (!stop && (elapsed = mono_s() - t0) < duration) {
        uint64_t target;
        if (window > 0) {
            uint64_t delivered = answered(stats, count_paths) - base;
            target = (uint64_t)(((double)delivered + window) / fanout);
        } else if (nsteps) {
            double acc = 0, left = elapsed;
            for (int i = 0; i < nsteps; i++) {
                double s = left < steps[i].seconds ? left : steps[i].seconds;
                acc += s * steps[i].rate;
                left -= s;
                if (left <= 0)
                    break;
            }
            target = (uint64_t)acc;
        } else {
            target = (uint64_t)(elapsed * rate);
        }
        /* At most 2000 per turn, so a stalled turn does not turn into one burst's timestamp. */
        for (int n = 0; produced < target && n < 2000; n++)
            produce_one(rk, rkt, &t, produced++, partitions);
        rd_kafka_poll(rk, 0);
        nap_us(200);
    }
    elapsed = mono_s() - t0;
    rd_kafka_flush(rk, 15000);
    printf("{\"produced\":%" PRIu64 ",\"acked\":%" PRIu64 ",\"failed\":%" PRIu64
           ",\"seconds\":%.3f}\n",
           produced, delivered_ok, delivered_failed, elapsed);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    free(t.buf);
    return delivered_failed ? 1 : 0;
usage:
    fprintf(
        stderr,
        "usage: bench_producer -b BOOTSTRAP -t TOPIC [--partitions N] [--size B] "
        "[--tenant T] [--id-prefix P] [--duration S] [--linger-ms MS] (--rate R | --ramp R:S,... | "
        "--window W --stats FILE [--fanout F] [--count-paths N])\n");
    return 2;
}
