/*
 * tests/llm: manual throughput measurement of the openai backend against the in-process
 * fake server. Usage: llm_throughput [requests=256] [in_flight=16] [delay_ms=50]
 * Prints one JSON line in the bench format (value = requests per second, baseline = the
 * ideal in_flight / delay).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_llm_server.h"
#include "llm/llm.h"

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 256;
    int k = argc > 2 ? atoi(argv[2]) : 16;
    int delay = argc > 3 ? atoi(argv[3]) : 50;
    if (n < 1 || k < 1 || delay < 0) {
        fprintf(stderr, "usage: llm_throughput [requests] [in_flight] [delay_ms]\n");
        return 2;
    }
    char e[128], url[64], model[32];
    fake_llm *srv = fake_llm_start(0, e, sizeof e);
    if (!srv) {
        fprintf(stderr, "%s\n", e);
        return 1;
    }
    snprintf(url, sizeof url, "http://127.0.0.1:%d", fake_llm_port(srv));
    snprintf(model, sizeof model, "delay:%d", delay);
    rlab_err err = {0};
    rlab_llm_config cfg = {.backend = "openai",
                           .base_url = url,
                           .model = model,
                           .api_key = "",
                           .timeout = 10,
                           .max_in_flight = k};
    rlab_llm *llm = rlab_llm_new(&cfg, &err);
    rlab_llm_msg *m = calloc((size_t)n, sizeof *m);
    char(*users)[16] = calloc((size_t)n, sizeof *users);
    rlab_llm_req *reqs = calloc((size_t)n, sizeof *reqs);
    rlab_llm_result *rs = calloc((size_t)n, sizeof *rs);
    if (!llm || !m || !users || !reqs || !rs) {
        fprintf(stderr, "setup failed: %s\n", err.msg);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        snprintf(users[i], sizeof users[i], "r%d", i);
        m[i] = (rlab_llm_msg){"user", users[i]};
        reqs[i] = (rlab_llm_req){.msgs = &m[i], .n_msgs = 1};
    }
    double t0 = rlab_now();
    int rc = rlab_llm_chat_many(llm, reqs, n, rs, &err);
    double dt = rlab_now() - t0;
    double lat = 0;
    for (int i = 0; i < n; i++)
        lat += rs[i].latency;
    double ideal = delay > 0 ? k / (delay / 1000.0) : 0;
    printf("{\"bench\": \"llm\", \"metric\": \"openai_fake_%dms_%d_in_flight\", \"value\": %.1f, "
           "\"unit\": \"req/s\", \"baseline\": %.1f, \"mean_latency_ms\": %.2f, \"ok\": %s}\n",
           delay, k, n / dt, ideal, 1000.0 * lat / n, rc == RLAB_OK ? "true" : "false");
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    rlab_llm_results_clear(rs, n);
    free(m), free(users), free(reqs), free(rs);
    rlab_llm_free(llm);
    fake_llm_stop(srv);
    return rc ? 1 : 0;
}
