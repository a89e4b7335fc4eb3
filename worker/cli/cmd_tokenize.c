/* cmd_tokenize.c: `catwire tokenize`, the basic_english tokens of each stdin
 * line, joined by single spaces, one output line per input line. A way to see
 * (and diff against Python) exactly what the model is fed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "tokenizer.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: catwire tokenize < TEXT\n"
            "\n"
            "Reads UTF-8 text lines on stdin and prints, for each, its tokens joined by\n"
            "single spaces (an empty line when it has none): torchtext's basic_english\n"
            "tokenizer, byte for byte (lowercase as Python's str.lower(); ' . , ( ) ! ?\n"
            "split off; \" deleted; <br />, ; and : are separators). Invalid UTF-8\n"
            "becomes U+FFFD, as Python's errors=\"replace\".\n"
            "\n"
            "options:\n"
            "  -h, --help  this text\n"
            "\n"
            "Exit codes: 0 ok, 1 read or write error, 2 usage.\n");
}

int cw_cmd_tokenize(int argc, char **argv) {
    int rc = CW_EXIT_ERROR;
    char *line = NULL;
    size_t cap = 0;
    cw_tokens_t t;
    cw_tokens_init(&t);

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            rc = CW_EXIT_OK;
            goto done;
        }
        fprintf(stderr, "catwire tokenize: unexpected argument '%s'\n", argv[i]);
        usage(stderr);
        rc = CW_EXIT_USAGE;
        goto done;
    }

    ssize_t n;
    errno = 0;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        size_t len = (size_t)n;
        if (len && line[len - 1] == '\n') len--;
        cw_tokenize(line, len, &t);
        for (size_t i = 0; i < t.n; i++) {
            if (i) putchar(' ');
            fwrite(t.buf + t.start[i], 1, t.len[i], stdout);
        }
        if (putchar('\n') == EOF) break;
    }
    if (ferror(stdin)) {
        fprintf(stderr, "catwire tokenize: reading stdin: %s\n", strerror(errno ? errno : EIO));
        goto done;
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "catwire tokenize: writing stdout: %s\n", strerror(errno ? errno : EIO));
        goto done;
    }
    rc = CW_EXIT_OK;
done:
    free(line); /* allocated by getline() */
    cw_tokens_free(&t);
    return rc;
}
