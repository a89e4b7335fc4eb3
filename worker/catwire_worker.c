/* catwire_worker.c: the worker daemon.
 *
 *   catwire-worker --config FILE [--check-config] [--dump-config] [--help]
 *
 * Loads the configuration, runs the engine (worker.h) until SIGTERM or
 * SIGINT, then shuts down gracefully. Exit status: 0 clean shutdown (or a
 * valid config with --check-config), 1 fatal error at run time, 2 bad usage or
 * configuration. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "reload.h"
#include "worker.h"

/* The one piece of process state a signal handler may reach. */
static cw_worker_t *volatile cw_the_worker;
static volatile sig_atomic_t cw_stop_requested;

static void cw_on_signal(int sig) {
    (void)sig;
    cw_stop_requested = 1;
    cw_worker_t *w = cw_the_worker;
    if (w) cw_worker_stop(w);
}

static void cw_usage(FILE *f) {
    fputs("usage: catwire-worker --config FILE [--check-config] [--dump-config] [--help]\n"
          "\n"
          "Consumes articles from Kafka, classifies them in micro-batches and publishes\n"
          "one result per article (see deploy/worker.conf for every setting).\n"
          "\n"
          "  --config FILE    libconfig file (required)\n"
          "  --check-config   validate the file and exit (0 when valid)\n"
          "  --dump-config    print the effective configuration with comments and exit\n"
          "  --help           this text\n"
          "\n"
          "SIGTERM or SIGINT: stop fetching, finish the batch, wait for deliveries,\n"
          "commit, leave the group, exit 0.\n", f);
}

int main(int argc, char **argv) {
    const char *path = NULL;
    int check = 0, dump = 0, rc = 2;
    cw_worker_conf_t conf;
    cw_worker_t *w = NULL;
    cw_reload_t *reload = NULL;   /* hot reload thread (reload.h) */
    char err[1024];

    cw_worker_conf_defaults(&conf);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc) path = argv[++i];
        else if (!strncmp(argv[i], "--config=", 9)) path = argv[i] + 9;
        else if (!strcmp(argv[i], "--check-config")) check = 1;
        else if (!strcmp(argv[i], "--dump-config")) dump = 1;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            cw_usage(stdout);
            rc = 0;
            goto done;
        } else {
            fprintf(stderr, "catwire-worker: unknown argument '%s'\n", argv[i]);
            cw_usage(stderr);
            goto done;
        }
    }
    if (!path && !dump) {
        fprintf(stderr, "catwire-worker: --config FILE is required\n");
        cw_usage(stderr);
        goto done;
    }
    if (path && cw_worker_conf_load(&conf, path, err, sizeof(err)) != 0) {
        fprintf(stderr, "catwire-worker: %s\n", err);
        goto done;
    }
    if (dump) {
        cw_worker_conf_dump(&conf, stdout);
        rc = 0;
        goto done;
    }
    if (check) {
        printf("%s: ok\n", path);
        rc = 0;
        goto done;
    }
    cw_log_set_level((cw_log_level_t)cw_log_level_parse(conf.log_level));

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = cw_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    w = cw_worker_new(&conf, err, sizeof(err));
    if (!w) {
        cw_log_error("main", "%s", err);
        rc = 1;
        goto done;
    }
    reload = cw_reload_start_worker(w, &conf, err, sizeof(err));
    if (!reload) {
        cw_log_error("main", "hot reload: %s", err);
        rc = 1;
        goto done;
    }
    cw_the_worker = w;
    /* A signal that arrived while the worker was being built. */
    if (cw_stop_requested) cw_worker_stop(w);
    rc = cw_worker_run(w) == 0 ? 0 : 1;
    cw_the_worker = NULL;
done:
    cw_reload_stop(reload);   /* before the worker: it offers models to it */
    cw_worker_destroy(w);
    cw_worker_conf_free(&conf);
    return rc;
}
