/*
 * tests/llm: the fake OpenAI-compatible server as a program (modes: fake_llm_server.h).
 * Usage: fake_llm_server [port]   (0 or none = ephemeral). Prints "port N" on stdout,
 * then serves until stdin reaches end of file (or the process is killed).
 */
#include <stdio.h>
#include <stdlib.h>

#include "fake_llm_server.h"

int main(int argc, char **argv)
{
    char e[128];
    fake_llm *s = fake_llm_start(argc > 1 ? atoi(argv[1]) : 0, e, sizeof e);
    if (!s) {
        fprintf(stderr, "%s\n", e);
        return 1;
    }
    printf("port %d\n", fake_llm_port(s));
    fflush(stdout);
    while (getchar() != EOF) {
    }
    fake_llm_stop(s);
    return 0;
}
