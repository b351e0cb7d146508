/* The batch demo workflow run by `reclab` with no arguments (until the shell exists). */
#ifndef RLAB_UI_DEMO_H
#define RLAB_UI_DEMO_H
#include <stdio.h>
int rlab_demo_run(FILE *out);
#endif
