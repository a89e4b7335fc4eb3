/* PLACEHOLDER until implemented; must not ship. */
#include <stdio.h>
int main(void) { fprintf(stderr, "catwire-trainer: not implemented yet\n"); return 1; }
