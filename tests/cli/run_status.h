/* run_status.h: run_status(fmt, ...), the CLI tests' way to run a tool:
 * formats a shell command, runs it with system(3) and returns its exit
 * status, or -1 when it did not exit normally (killed by a signal, or the
 * shell could not start). */
#ifndef CW_TEST_RUN_STATUS_H
#define CW_TEST_RUN_STATUS_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

static int run_status(const char *fmt, ...) __attribute__((format(printf, 1, 2), unused));
static int run_status(const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#endif
