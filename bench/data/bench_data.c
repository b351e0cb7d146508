/*
 * bench/data: seconds to load a real dataset and split it leave-one-out, median of several
 * repeats, for ML-100K u.data (with its u.item / u.user siblings) and Amazon Beauty
 * (seq-line). Prints one JSON line per measurement; "baseline" is the target (0.2 s).
 *
 *     RECLAB_DATA=../shared/data build/bench/bench_data [repeats]
 */
#include "data/loaders.h"
#include "data/split.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void emit(const char *metric, double value, const char *unit, double baseline)
{
    printf("{\"bench\": \"data\", \"metric\": \"%s\", \"value\": %.6f, \"unit\": \"%s\", "
           "\"baseline\": %.3f}\n",
           metric, value, unit, baseline);
}

static int run(const char *dir, const char *rel, const char *tag, int reps)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    double load[64], loo[64], total[64];
    size_t n = 0;
    for (int r = 0; r < reps; r++) {
        rlab_err err = {0};
        rlab_dataset *ds = NULL;
        double t0 = rlab_now();
        if (rlab_data_load(path, NULL, NULL, &ds, &err) != RLAB_OK) {
            fprintf(stderr, "bench_data: %s\n", err.msg);
            return 1;
        }
        double t1 = rlab_now();
        rlab_split sp;
        if (rlab_split_loo(&ds->inter, rlab_vocab_size(&ds->users), &sp, &err) != RLAB_OK) {
            fprintf(stderr, "bench_data: %s\n", err.msg);
            rlab_dataset_free(ds);
            return 1;
        }
        double t2 = rlab_now();
        n = ds->inter.n;
        rlab_split_clear(&sp);
        rlab_dataset_free(ds);
        load[r] = t1 - t0;
        loo[r] = t2 - t1;
        total[r] = t2 - t0;
    }
    char m[96];
    snprintf(m, sizeof m, "%s_load_loo_s", tag);
    emit(m, median(total, reps), "s", 0.2);
    snprintf(m, sizeof m, "%s_load_s", tag);
    emit(m, median(load, reps), "s", 0.2);
    snprintf(m, sizeof m, "%s_loo_s", tag);
    emit(m, median(loo, reps), "s", 0.2);
    snprintf(m, sizeof m, "%s_rows", tag);
    emit(m, (double)n, "rows", (double)n);
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = getenv("RECLAB_DATA");
    if (!dir || !*dir) {
        fprintf(stderr, "bench_data: RECLAB_DATA not set, nothing to measure\n");
        return 0;
    }
    int reps = argc > 1 ? atoi(argv[1]) : 7;
    if (reps < 1 || reps > 64)
        reps = 7;
    int rc = run(dir, "movielens-100k/u.data", "ml100k", reps);
    rc |= run(dir, "amazon-beauty/Beauty.txt", "beauty", reps);
    return rc;
}
