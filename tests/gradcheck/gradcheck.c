/* Finite-difference gradient checks (see gradcheck.h). */
#include "gradcheck.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static double proj_loss(const rlab_tensor *out, const float *r)
{
    double L = 0.0;
    for (int64_t i = 0; i < out->n; i++)
        L += (double)r[i] * (double)out->data[i];
    return L;
}

static rlab_tensor *run_build(const rlab_gc_case *c, rlab_tape *tape, rlab_params *P,
                              rlab_gc_build build, void *ud)
{
    rlab_tensor *in[RLAB_GC_MAXIN];
    rlab_tape_reset(tape);
    rlab_tape_seed(tape, c->seed ? c->seed : 1, 7);
    rlab_tape_set_training(tape, c->training);
    for (int i = 0; i < c->nin; i++)
        in[i] = &P->t[i];
    return build(tape, in, ud);
}

int rlab_gradcheck(const rlab_gc_case *c, rlab_gc_build build, void *ud)
{
    const float h = c->h > 0 ? c->h : 1e-2f;
    const double atol = c->atol > 0 ? (double)c->atol : 1e-3;
    const double rtol = c->rtol > 0 ? (double)c->rtol : 1e-2;
    const int max_check = c->max_check > 0 ? c->max_check : 64;
    rlab_err err = {0};
    rlab_rng rng;
    rlab_rng_seed(&rng, c->seed ? c->seed : 1);
    rlab_params *P = rlab_params_new(c->in, c->nin, &rng, &err);
    rlab_tape *tape = rlab_tape_new((size_t)256 << 20, 1 << 14, &err);
    int failures = 0;
    float *r = NULL, *gbp = NULL;
    if (!P || !tape) {
        fprintf(stderr, "gradcheck %s %s: setup failed: %s\n", c->op, c->desc, err.msg);
        failures = 1;
        goto done;
    }
    if (c->init) {
        rlab_tensor *in[RLAB_GC_MAXIN];
        for (int i = 0; i < c->nin; i++)
            in[i] = &P->t[i];
        c->init(in, c->nin, ud);
    }
    rlab_tensor *out = run_build(c, tape, P, build, ud);
    if (rlab_tape_error(tape)) {
        fprintf(stderr, "gradcheck %s %s: forward failed: %s\n", c->op, c->desc,
                rlab_tape_errmsg(tape));
        failures = 1;
        goto done;
    }
    r = rlab_malloc((size_t)out->n * sizeof *r);
    gbp = rlab_malloc(P->count * sizeof *gbp + 1);
    for (int64_t i = 0; i < out->n; i++)
        r[i] = 2.0f * rlab_rng_uniform(&rng) - 1.0f;
    rlab_params_zero_grad(P);
    if (rlab_tape_backward_from(tape, out, r) != RLAB_OK) {
        fprintf(stderr, "gradcheck %s %s: backward failed: %s\n", c->op, c->desc,
                rlab_tape_errmsg(tape));
        failures = 1;
        goto done;
    }
    memcpy(gbp, P->grad, P->count * sizeof *gbp);

    for (int k = 0; k < c->nin; k++) {
        if (c->skip[k])
            continue;
        rlab_tensor *x = &P->t[k];
        const float *g = gbp + (x->grad - P->grad);
        int64_t n = x->n, step = n > max_check ? (n + max_check - 1) / max_check : 1;
        double worst = -1.0, worst_bp = 0, worst_fd = 0;
        int64_t worst_i = -1;
        int bad = 0;
        /* a strided sample plus the last element, so both ends of the tensor are covered */
        for (int64_t i = 0; i < n; i = (i + step < n || i == n - 1) ? i + step : n - 1) {
            float x0 = x->data[i];
            x->data[i] = x0 + h;
            double Lp = proj_loss(run_build(c, tape, P, build, ud), r);
            x->data[i] = x0 - h;
            double Lm = proj_loss(run_build(c, tape, P, build, ud), r);
            x->data[i] = x0;
            double fd = (Lp - Lm) / (2.0 * (double)h);
            double bp = g[i];
            double diff = fabs(bp - fd);
            double tol = atol + rtol * fmax(fabs(bp), fabs(fd));
            if (diff > tol)
                bad++;
            if (diff - tol > worst) {
                worst = diff - tol;
                worst_i = i;
                worst_bp = bp;
                worst_fd = fd;
            }
            if (i == n - 1)
                break;
        }
        if (bad) {
            fprintf(stderr,
                    "gradcheck %s %s: input %d '%s': %d element(s) off; worst index %lld: "
                    "backprop %.6g vs finite difference %.6g\n",
                    c->op, c->desc, k, x->name, bad, (long long)worst_i, worst_bp, worst_fd);
            failures += bad;
        }
    }
done:
    rlab_free(r);
    rlab_free(gbp);
    rlab_tape_free(tape);
    rlab_params_free(P);
    return failures;
}
