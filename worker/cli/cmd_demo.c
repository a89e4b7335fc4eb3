/* cmd_demo.c: PLACEHOLDER until implemented; must not ship. */
#include <stdio.h>
#include "cli.h"
int cw_cmd_demo(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "catwire demo: not implemented yet\n"); return CW_EXIT_ERROR; }
