/*
 * The embedded development broker; see broker.h. Everything Kafka-side is
 * librdkafka's mock cluster; this file only parses options, creates topics,
 * relays fault-injection commands and waits for a signal.
 */
#include "herald/broker.h"
#include "herald/config.h"
#include "herald/err.h"
#include "herald/log.h"
#include "herald/retry.h"

#include <errno.h>
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: herald broker [--partitions N] [--topics a,b,...] [--brokers N] "
                 "[--control]\n"
                 "  --partitions N  partitions of each topic (default 4)\n"
                 "  --topics LIST   topics to create (default: herald's default topics)\n"
                 "  --brokers N     brokers in the cluster (default 1)\n"
                 "  --control       read fault-injection commands on stdin\n");
}

/* The topics a default herald configuration uses, so `herald run` works as is. */
static int default_topics(struct strlist *out)
{
    struct config cfg;
    struct retry_policy pol;
    char topic[512];
    char *joined = NULL;
    size_t len = 0;
    FILE *f;
    int rc = config_init(&cfg);

    if (rc)
        return rc;
    f = open_memstream(&joined, &len);
    if (!f) {
        config_release(&cfg);
        return HERALD_ENOMEM;
    }
    for (size_t i = 0; i < cfg.events_topics.n; i++)
        fprintf(f, "%s,", cfg.events_topics.v[i]);
    fprintf(f, "%s,%s", cfg.dlq_topic, cfg.attempts_topic);
    if (retry_policy_init(&pol, cfg.retry_schedule_ms, cfg.retry_schedule_len, 0) == 0) {
        for (size_t i = 0; i < pol.ntiers; i++) {
            retry_tier_topic(&pol, cfg.retry_prefix, i, topic, sizeof(topic));
            fprintf(f, ",%s", topic);
        }
    }
    fclose(f);
    rc = config_split_list(joined, out);
    free(joined);
    config_release(&cfg);
    return rc;
}

static int parse_broker_ids(const char *s, int nbrokers, int *first, int *last)
{
    char *end;
    long id;
    if (strcmp(s, "all") == 0) {
        *first = 1;
        *last = nbrokers;
        return 0;
    }
    id = strtol(s, &end, 10);
    if (*end || id < 1 || id > nbrokers)
        return HERALD_EINVAL;
    *first = *last = (int)id;
    return 0;
}

static void control(rd_kafka_mock_cluster_t *mc, int nbrokers, char *line)
{
    char *argv[5] = {0};
    int argc = 0, first, last;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    char *save = NULL;

    for (char *tok = strtok_r(line, " \t\r\n", &save); tok && argc < 5;
         tok = strtok_r(NULL, " \t\r\n", &save))
        argv[argc++] = tok;
    if (argc == 0)
        return;
    if ((!strcmp(argv[0], "down") || !strcmp(argv[0], "up")) && argc == 2) {
        if (parse_broker_ids(argv[1], nbrokers, &first, &last)) {
            printf("error: no broker \"%s\"\n", argv[1]);
            goto out;
        }
        for (int id = first; id <= last && !err; id++)
            err = argv[0][0] == 'd' ? rd_kafka_mock_broker_set_down(mc, id)
                                    : rd_kafka_mock_broker_set_up(mc, id);
    } else if (!strcmp(argv[0], "rtt") && argc == 3) {
        if (parse_broker_ids(argv[1], nbrokers, &first, &last)) {
            printf("error: no broker \"%s\"\n", argv[1]);
            goto out;
        }
        for (int id = first; id <= last && !err; id++)
            err = rd_kafka_mock_broker_set_rtt(mc, id, atoi(argv[2]));
    } else if (!strcmp(argv[0], "errors") && argc == 4) {
        int16_t apikey = (int16_t)atoi(argv[1]);
        size_t cnt = (size_t)atol(argv[3]);
        rd_kafka_resp_err_t *errs = calloc(cnt ? cnt : 1, sizeof(*errs));
        if (!errs) {
            printf("error: out of memory\n");
            goto out;
        }
        for (size_t i = 0; i < cnt; i++)
            errs[i] = (rd_kafka_resp_err_t)atoi(argv[2]);
        rd_kafka_mock_push_request_errors_array(mc, apikey, cnt, errs);
        free(errs);
    } else if (!strcmp(argv[0], "clear") && argc == 2) {
        rd_kafka_mock_clear_request_errors(mc, (int16_t)atoi(argv[1]));
    } else if (!strcmp(argv[0], "topic-error") && argc == 3) {
        rd_kafka_mock_topic_set_error(mc, argv[1], (rd_kafka_resp_err_t)atoi(argv[2]));
    } else {
        printf("error: unknown command \"%s\"\n", argv[0]);
        goto out;
    }
    if (err)
        printf("error: %s\n", rd_kafka_err2str(err));
    else
        printf("ok\n");
out:
    fflush(stdout);
}

int broker_main(int argc, char **argv)
{
    static const struct option opts[] = {{"partitions", required_argument, NULL, 'p'},
                                         {"topics", required_argument, NULL, 't'},
                                         {"brokers", required_argument, NULL, 'b'},
                                         {"control", no_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int partitions = 4, nbrokers = 1, c, sfd = -1, status = 1;
    bool with_control = false;
    struct strlist topics = {0};
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_t *rk = NULL;
    rd_kafka_mock_cluster_t *mc = NULL;
    char errstr[512], line[1024];
    size_t linelen = 0;
    sigset_t mask;

    while ((c = getopt_long(argc, argv, "p:t:b:ch", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            partitions = atoi(optarg);
            if (partitions < 1 || partitions > 1000) {
                fprintf(stderr, "herald broker: --partitions must be 1 to 1000\n");
                return 2;
            }
            break;
        case 't':
            strlist_release(&topics);
            if (config_split_list(optarg, &topics) || topics.n == 0) {
                fprintf(stderr, "herald broker: --topics needs a comma-separated list\n");
                return 2;
            }
            break;
        case 'b':
            nbrokers = atoi(optarg);
            if (nbrokers < 1 || nbrokers > 16) {
                fprintf(stderr, "herald broker: --brokers must be 1 to 16\n");
                return 2;
            }
            break;
        case 'c':
            with_control = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "herald broker: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    if (topics.n == 0 && default_topics(&topics)) {
        fprintf(stderr, "herald broker: out of memory\n");
        return 1;
    }

    /* Block the signals before any librdkafka thread starts, so only signalfd sees them. */
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (sfd < 0) {
        fprintf(stderr, "herald broker: signalfd: %s\n", strerror(errno));
        goto done;
    }

    conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof(errstr));
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "herald broker: cannot create the client: %s\n", errstr);
        goto done;
    }
    conf = NULL;
    mc = rd_kafka_mock_cluster_new(rk, nbrokers);
    if (!mc) {
        fprintf(stderr, "herald broker: cannot create the mock cluster\n");
        goto done;
    }
    for (size_t i = 0; i < topics.n; i++) {
        rd_kafka_resp_err_t err =
            rd_kafka_mock_topic_create(mc, topics.v[i], partitions, nbrokers < 3 ? nbrokers : 3);
        if (err) {
            fprintf(stderr, "herald broker: cannot create topic \"%s\": %s\n", topics.v[i],
                    rd_kafka_err2str(err));
            goto done;
        }
    }
    printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);
    log_info("broker", "serving %zu topics with %d partitions on %s", topics.n, partitions,
             rd_kafka_mock_cluster_bootstraps(mc));

    for (;;) {
        struct pollfd pfd[2] = {{sfd, POLLIN, 0}, {0, POLLIN, 0}};
        int n = poll(pfd, with_control ? 2 : 1, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        if (pfd[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                log_info("broker", "signal %u: shutting down", si.ssi_signo);
                break;
            }
        }
        if (with_control && (pfd[1].revents & (POLLIN | POLLHUP))) {
            ssize_t r = read(0, line + linelen, sizeof(line) - 1 - linelen);
            if (r <= 0) {
                with_control = false; /* stdin closed: keep serving, stop reading */
                continue;
            }
            linelen += (size_t)r;
            line[linelen] = '\0';
            for (char *nl; (nl = strchr(line, '\n'));) {
                size_t used = (size_t)(nl + 1 - line);
                *nl = '\0';
                control(mc, nbrokers, line);
                memmove(line, line + used, linelen - used + 1);
                linelen -= used;
            }
            if (linelen == sizeof(line) - 1)
                linelen = 0; /* an overlong line is dropped */
        }
    }
    status = 0;
done:
    if (mc)
        rd_kafka_mock_cluster_destroy(mc);
    if (rk)
        rd_kafka_destroy(rk);
    if (conf)
        rd_kafka_conf_destroy(conf);
    if (sfd >= 0)
        close(sfd);
    strlist_release(&topics);
    return status;
}
