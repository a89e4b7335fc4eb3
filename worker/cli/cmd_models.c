/* cmd_models.c: PLACEHOLDER until implemented; must not ship. */
#include <stdio.h>
#include "cli.h"
int cw_cmd_models(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "catwire models: not implemented yet\n"); return CW_EXIT_ERROR; }
