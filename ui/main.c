/*
 * reclab: the program. Parses the command line and runs the requested mode. Until the
 * shell exists, running it without arguments runs the batch demo workflow (demo.c).
 */
#include "base/base.h"
#include "demo.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: reclab [--help] [--version] [demo]\n"
               "\n"
               "  (no arguments)  run the demo workflow in batch and print its results\n"
               "  demo            the same\n"
               "  --version       print the version and exit\n"
               "  --help          this text\n");
}

int main(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "--version")) {
        printf("reclab %s\n", rlab_version());
        return 0;
    }
    if (argc == 1 || !strcmp(argv[1], "demo"))
        return rlab_demo_run(stdout) == RLAB_OK ? 0 : 1;
    fprintf(stderr, "reclab: unknown argument '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
