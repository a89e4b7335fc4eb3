/* cmd_predict.c: PLACEHOLDER until implemented; must not ship. */
#include <stdio.h>
#include "cli.h"
int cw_cmd_predict(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "catwire predict: not implemented yet\n"); return CW_EXIT_ERROR; }
