/*
 * herald's command line. This file only parses the command line and hands
 * over to the module that owns each command.
 */
#include "herald/admin.h"
#include "herald/broker.h"
#include "herald/config.h"
#include "herald/log.h"
#include "herald/replay.h"
#include "herald/signtool.h"
#include "herald/worker.h"

#include <curl/curl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

static void usage(FILE *out)
{
    fprintf(out,
            "herald %s: webhook delivery worker\n\n"
            "usage: herald COMMAND [options]\n\n"
            "  run [--config FILE]           run the worker (Kafka -> signed HTTP deliveries)\n"
            "  check-config [--config FILE]  validate a config (file + HERALD_* environment)\n"
            "  broker [--partitions N] [--topics a,b] [--control]\n"
            "                                embedded Kafka for development and tests\n"
            "  subs put|get|list|delete      manage subscriptions in Redis\n"
            "  attempts SUB [--failed]       recent delivery attempts of a subscription\n"
            "  resend --sub SUB --event ID   deliver one event to one subscription again, now\n"
            "  replay --sub SUB --since T [--until T]\n"
            "                                re-read the events topics and deliver matches again\n"
            "  sign --scheme S --secret K    print the signature headers for a body on stdin\n"
            "  verify --scheme S --secret K --header 'Name: value' ...\n"
            "                                check a received request's signature\n"
            "  --help-config                 every configuration key, default and meaning\n"
            "  --version\n",
            HERALD_VERSION);
}

/*
 * Loads defaults, then the file, then the environment, then validates. `run`
 * reports errors as a JSON log line (its stderr is a log stream); the
 * interactive check-config prints plain text and the effective config.
 */
static int load_config(int argc, char **argv, struct config *cfg, bool for_run)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"print", no_argument, NULL, 'p'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *path = NULL;
    bool print = false;
    char err[1024];
    int c;

    optind = 0;
    while ((c = getopt_long(argc, argv, "c:ph", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'p':
            print = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "herald: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    if (config_init(cfg))
        return 1;
    if ((path && config_load_file(cfg, path, err, sizeof(err))) ||
        config_load_env(cfg, environ, err, sizeof(err)) || config_validate(cfg, err, sizeof(err))) {
        if (for_run)
            log_error("config", "%s", err);
        else
            fprintf(stderr, "herald: %s\n", err);
        config_release(cfg);
        return 2;
    }
    if (print || !for_run)
        config_print(cfg, stdout);
    return 0;
}

int main(int argc, char **argv)
{
    struct config cfg;
    int rc;

    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("herald %s (%s)\n", HERALD_VERSION, curl_version());
        return 0;
    }
    if (!strcmp(argv[1], "--help-config")) {
        config_print_help(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--help-config-markdown")) {
        config_print_markdown(stdout);
        return 0;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "herald: cannot initialise libcurl\n");
        return 1;
    }
    if (!strcmp(argv[1], "run")) {
        rc = load_config(argc - 1, argv + 1, &cfg, true);
        if (rc)
            return rc;
        log_set_level(cfg.log_level);
        config_log(&cfg);
        rc = worker_run(&cfg);
        config_release(&cfg);
    } else if (!strcmp(argv[1], "check-config")) {
        rc = load_config(argc - 1, argv + 1, &cfg, false);
        if (rc == 0)
            config_release(&cfg);
    } else if (!strcmp(argv[1], "broker")) {
        rc = broker_main(argc - 1, argv + 1);
    } else if (!strcmp(argv[1], "subs")) {
        rc = admin_subs(argc - 1, argv + 1, environ);
    } else if (!strcmp(argv[1], "attempts")) {
        rc = admin_attempts(argc - 1, argv + 1, environ);
    } else if (!strcmp(argv[1], "resend")) {
        rc = replay_resend(argc - 1, argv + 1, environ);
    } else if (!strcmp(argv[1], "replay")) {
        rc = replay_replay(argc - 1, argv + 1, environ);
    } else if (!strcmp(argv[1], "sign")) {
        rc = signtool_sign(argc - 1, argv + 1);
    } else if (!strcmp(argv[1], "verify")) {
        rc = signtool_verify(argc - 1, argv + 1);
    } else {
        fprintf(stderr, "herald: unknown command \"%s\"\n", argv[1]);
        usage(stderr);
        rc = 2;
    }
    curl_global_cleanup();
    return rc;
}
