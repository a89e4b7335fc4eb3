/* catwire.c: the operator tool's entry point; dispatches to cmd_*.c. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"demo", cw_cmd_demo, "run the whole job on an embedded broker (train or load, stream, classify)"},
    {"predict", cw_cmd_predict, "label texts with a registered model"},
    {"evaluate", cw_cmd_evaluate, "accuracy, per-class P/R/F1 and confusion matrix on a CSV"},
    {"tokenize", cw_cmd_tokenize, "print basic_english tokens of each stdin line"},
    {"publish", cw_cmd_publish, "publish CSV or JSON-lines articles to a Kafka topic"},
    {"tail", cw_cmd_tail, "print results or dead letters from a topic as JSON lines"},
    {"models", cw_cmd_models, "list, show, promote, rollback, pin and gc model versions"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: catwire COMMAND [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n`catwire COMMAND --help` describes each. Exit codes: 0 ok, 1 error, 2 usage.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return CW_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return CW_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "catwire: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return CW_EXIT_USAGE;
}
