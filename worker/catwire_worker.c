/* PLACEHOLDER until implemented; must not ship. */
#include <stdio.h>
int main(void) { fprintf(stderr, "catwire-worker: not implemented yet\n"); return 1; }
