/*
 * core/tensor/tape: the reverse-mode tape (a Wengert list of op outputs on an arena), tensor
 * creation, parameter blocks, and the thread/determinism switches. Ops live in other files
 * of this folder and use rlab_tape_op() to record themselves.
 */
#include "tensor/ops_internal.h"
#include "tensor/tensor.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* OpenBLAS extension (declared in its cblas.h on Debian; repeated for other headers). */
void openblas_set_num_threads(int num_threads);
char *openblas_get_corename(void);

/* ---- tape ------------------------------------------------------------------------------ */
rlab_tape *rlab_tape_new(size_t arena_bytes, size_t max_nodes, rlab_err *err)
{
    rlab_tape *t = rlab_calloc(1, sizeof *t);
    if (!t) {
        rlab_errf(err, RLAB_ENOMEM, "tape: out of memory");
        return NULL;
    }
    t->arena = rlab_arena_new(arena_bytes, err);
    t->nodes = rlab_calloc(max_nodes ? max_nodes : 1, sizeof *t->nodes);
    if (!t->arena || !t->nodes) {
        rlab_tape_free(t);
        rlab_errf(err, RLAB_ENOMEM, "tape: cannot reserve %zu bytes and %zu nodes", arena_bytes,
                  max_nodes);
        return NULL;
    }
    t->maxnodes = max_nodes;
    t->training = 1;
    t->poison.flags = RLAB_T_POISON;
    t->poison.op = "poison";
    t->poison.ndim = 1;
    t->poison.shape[0] = 1;
    t->poison.n = 1;
    t->poison_data[0] = NAN;
    t->poison.data = t->poison_data;
    return t;
}

void rlab_tape_free(rlab_tape *tape)
{
    if (!tape)
        return;
    rlab_arena_free(tape->arena);
    rlab_free(tape->nodes);
    rlab_free(tape);
}

void rlab_tape_reset(rlab_tape *tape)
{
    rlab_arena_reset(tape->arena);
    tape->nnodes = 0;
    tape->ready_n = 0;
    tape->step++;
    rlab_err_clear(&tape->err);
}

void rlab_tape_set_training(rlab_tape *tape, int training) { tape->training = training; }

void rlab_tape_seed(rlab_tape *tape, uint64_t seed, uint64_t step)
{
    tape->seed = seed;
    tape->step = step;
}

int rlab_tape_error(const rlab_tape *tape) { return tape->err.code; }

const char *rlab_tape_errmsg(const rlab_tape *tape) { return tape->err.msg; }

rlab_tensor *rlab_tape_fail(rlab_tape *tape, int code, const char *fmt, ...)
{
    if (tape->err.code == RLAB_OK) {
        va_list ap;
        va_start(ap, fmt);
        rlab_verrf(&tape->err, code, fmt, ap);
        va_end(ap);
    }
    return &tape->poison;
}

void *rlab_tape_alloc(rlab_tape *tape, size_t bytes)
{
    void *p = rlab_arena_alloc(tape->arena, bytes);
    if (!p)
        rlab_tape_fail(tape, RLAB_ENOMEM,
                       "tape arena full: %zu bytes requested, %zu of %zu in use (raise the "
                       "arena size)",
                       bytes, tape->arena->used, tape->arena->cap);
    return p;
}

void *rlab_tape_calloc(rlab_tape *tape, size_t bytes)
{
    void *p = rlab_tape_alloc(tape, bytes);
    if (p)
        rlab_k_zero(p, bytes);
    return p;
}

size_t rlab_tape_used(const rlab_tape *tape) { return tape->arena->used; }

size_t rlab_tape_peak(const rlab_tape *tape) { return tape->arena->peak; }

int rlab_tape_backward(rlab_tape *tape, rlab_tensor *loss)
{
    static const float one = 1.0f;
    if (!tape->err.code && (!loss || (loss->flags & RLAB_T_POISON) || loss->n != 1))
        rlab_tape_fail(tape, RLAB_EINVAL, "backward: the loss must be a scalar tensor");
    return rlab_tape_backward_from(tape, loss, &one);
}

void rlab_tape_on_grad_ready(rlab_tape *tape, rlab_tensor *ts, int n, void (*fn)(void *ud, int k),
                             void *ud)
{
    tape->ready_base = ts;
    tape->ready_n = fn && ts ? n : 0;
    tape->ready_fn = fn;
    tape->ready_ud = ud;
}

/* index of t among the watched tensors, or -1 */
static int watched(const rlab_tape *tape, const rlab_tensor *t)
{
    if (!t || !tape->ready_n || t < tape->ready_base || t >= tape->ready_base + tape->ready_n)
        return -1;
    return (int)(t - tape->ready_base);
}

int rlab_tape_backward_from(rlab_tape *tape, rlab_tensor *out, const float *seed_grad)
{
    const int nw = tape->ready_n;
    void (*fn)(void *, int) = tape->ready_fn;
    void *ud = tape->ready_ud;
    tape->ready_n = 0; /* one backward */
    /* first[k]: the earliest node with ts[k] among its sources (-1: none; -2: reported; -3:
     * it has a view, reported at the end) */
    int64_t *first = nw ? rlab_malloc((size_t)nw * sizeof *first) : NULL;
    if (nw && !first) {
        rlab_tape_fail(tape, RLAB_ENOMEM, "backward: out of memory");
        return tape->err.code;
    }
    for (int k = 0; k < nw; k++)
        first[k] = -1;
    int rc = tape->err.code;
    if (!rc && (!out || (out->flags & RLAB_T_POISON))) {
        rlab_tape_fail(tape, RLAB_EINVAL, "backward: invalid output tensor");
        rc = tape->err.code;
    }
    if (!rc && out->grad) { /* else nothing depends on a parameter */
        tape->ready_n = nw; /* for watched() */
        for (size_t i = 0; i < tape->nnodes && nw; i++) {
            const rlab_tensor *node = tape->nodes[i];
            if (node->grad && node->backward)
                for (int j = 0; j < RLAB_T_MAXSRC; j++) {
                    int k = watched(tape, node->src[j]);
                    if (k >= 0 && first[k] == -1)
                        first[k] = (int64_t)i;
                }
            if (node->grad && !node->backward && (node->flags & RLAB_T_VIEW))
                for (int j = 0; j < RLAB_T_MAXSRC; j++) {
                    /* a view (reshape) of a watched tensor shares its gradient: the ops on
                     * the view add into it unseen, so it is reported only after the whole
                     * backward (-3). A view of a view is not followed: no kind makes one of
                     * a parameter today. */
                    int k = watched(tape, node->src[j]);
                    if (k >= 0)
                        first[k] = -3;
                }
        }
        for (int64_t i = 0; i < out->n; i++)
            out->grad[i] += seed_grad[i];
        for (size_t i = tape->nnodes; i-- > 0;) {
            rlab_tensor *node = tape->nodes[i];
            if (!node->grad || !node->backward)
                continue;
            node->backward(tape, node);
            for (int j = 0; j < RLAB_T_MAXSRC && nw; j++) {
                int k = watched(tape, node->src[j]);
                if (k >= 0 && first[k] == (int64_t)i) {
                    first[k] = -2;
                    fn(ud, k);
                }
            }
        }
        tape->ready_n = 0;
        rc = tape->err.code;
    }
    for (int k = 0; k < nw; k++) /* unused (or after an error): final as they are */
        if (first[k] != -2)
            fn(ud, k);
    rlab_free(first);
    return rc;
}

/* ---- tensors --------------------------------------------------------------------------- */
static int set_shape(rlab_tensor *t, int ndim, const int64_t *shape)
{
    if (ndim < 1 || ndim > RLAB_T_MAXDIM)
        return 0;
    t->ndim = ndim;
    t->n = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0)
            return 0;
        t->shape[d] = shape[d];
        t->n *= shape[d];
    }
    for (int d = ndim; d < RLAB_T_MAXDIM; d++)
        t->shape[d] = 1;
    return 1;
}

/* zero_data: zero-fill data (rlab_t_new, rlab_tape_op); ops that overwrite every element skip
 * that memory pass (rlab_tape_op_nofill). The grad buffer is always zeroed (backward adds). */
static rlab_tensor *alloc_tensor(rlab_tape *tape, const char *op, int ndim, const int64_t *shape,
                                 int with_grad, int zero_data)
{
    if (tape->err.code)
        return &tape->poison;
    rlab_tensor *t = rlab_tape_alloc(tape, sizeof *t);
    if (!t)
        return &tape->poison;
    memset(t, 0, sizeof *t);
    if (!set_shape(t, ndim, shape))
        return rlab_tape_fail(tape, RLAB_EINVAL, "%s: bad shape (ndim %d)", op, ndim);
    t->op = op;
    t->data = zero_data ? rlab_tape_calloc(tape, (size_t)t->n * sizeof(float))
                        : rlab_tape_alloc(tape, (size_t)t->n * sizeof(float));
    if (!t->data)
        return &tape->poison;
#ifndef NDEBUG
    /* debug builds (the sanitizer runs of the tests): NaN in every element of an unfilled
     * output, so an op that fails to write one shows up as NaN in its results */
    if (!zero_data)
        for (int64_t i = 0; i < t->n; i++)
            t->data[i] = NAN;
#endif
    if (with_grad) {
        t->grad = rlab_tape_calloc(tape, (size_t)t->n * sizeof(float));
        if (!t->grad)
            return &tape->poison;
        t->flags |= RLAB_T_REQUIRES_GRAD;
    }
    return t;
}

rlab_tensor *rlab_t_new(rlab_tape *tape, int ndim, const int64_t *shape, int requires_grad)
{
    return alloc_tensor(tape, "new", ndim, shape, requires_grad, 1);
}

rlab_tensor *rlab_t_input(rlab_tape *tape, float *data, int ndim, const int64_t *shape)
{
    if (tape->err.code)
        return &tape->poison;
    rlab_tensor *t = rlab_tape_alloc(tape, sizeof *t);
    if (!t)
        return &tape->poison;
    memset(t, 0, sizeof *t);
    if (!set_shape(t, ndim, shape) || !data)
        return rlab_tape_fail(tape, RLAB_EINVAL, "input: bad shape or NULL data");
    t->op = "input";
    t->data = data;
    t->flags = RLAB_T_VIEW;
    return t;
}

int rlab_t_bad(const rlab_tensor *const *ts, int n)
{
    for (int i = 0; i < n; i++)
        if (!ts[i] || (ts[i]->flags & RLAB_T_POISON))
            return 1;
    return 0;
}

static rlab_tensor *tape_op(rlab_tape *tape, const char *name, int ndim, const int64_t *shape,
                            rlab_tensor *const *src, int nsrc, rlab_backward_fn backward,
                            int zero_data)
{
    if (tape->err.code)
        return &tape->poison;
    if (rlab_t_bad((const rlab_tensor *const *)src, nsrc))
        return rlab_tape_fail(tape, RLAB_EINVAL, "%s: invalid input tensor", name);
    if (nsrc > RLAB_T_MAXSRC)
        return rlab_tape_fail(tape, RLAB_EINVAL, "%s: %d sources, at most %d recorded", name, nsrc,
                              RLAB_T_MAXSRC);
    if (tape->nnodes >= tape->maxnodes)
        return rlab_tape_fail(tape, RLAB_ENOMEM, "%s: tape holds at most %zu ops per step", name,
                              tape->maxnodes);
    int need_grad = 0;
    for (int i = 0; i < nsrc; i++)
        need_grad |= src[i]->grad != NULL;
    rlab_tensor *t = alloc_tensor(tape, name, ndim, shape, need_grad, zero_data);
    if (t->flags & RLAB_T_POISON)
        return t;
    for (int i = 0; i < nsrc; i++)
        t->src[i] = src[i];
    t->backward = backward;
    tape->nodes[tape->nnodes++] = t;
    return t;
}

rlab_tensor *rlab_tape_op(rlab_tape *tape, const char *name, int ndim, const int64_t *shape,
                          rlab_tensor *const *src, int nsrc, rlab_backward_fn backward)
{
    return tape_op(tape, name, ndim, shape, src, nsrc, backward, 1);
}

rlab_tensor *rlab_tape_op_nofill(rlab_tape *tape, const char *name, int ndim, const int64_t *shape,
                                 rlab_tensor *const *src, int nsrc, rlab_backward_fn backward)
{
    return tape_op(tape, name, ndim, shape, src, nsrc, backward, 0);
}

const char *rlab_t_shape_str(const rlab_tensor *t, char *buf, size_t size)
{
    size_t k = 0;
    k += (size_t)snprintf(buf + k, size - k, "[");
    for (int d = 0; d < t->ndim && k < size; d++)
        k += (size_t)snprintf(buf + k, size - k, d ? ", %lld" : "%lld", (long long)t->shape[d]);
    if (k < size)
        snprintf(buf + k, size - k, "]");
    return buf;
}

/* ---- parameters ------------------------------------------------------------------------- */
static void init_param(rlab_tensor *t, const rlab_param_spec *s, rlab_rng *rng)
{
    float *x = t->data;
    switch (s->init) {
    case RLAB_INIT_ONE:
        for (int64_t i = 0; i < t->n; i++)
            x[i] = 1.0f;
        break;
    case RLAB_INIT_NORMAL:
        for (int64_t i = 0; i < t->n; i++)
            x[i] = s->scale * rlab_rng_normal(rng);
        break;
    case RLAB_INIT_UNIFORM:
        for (int64_t i = 0; i < t->n; i++)
            x[i] = s->scale * (2.0f * rlab_rng_uniform(rng) - 1.0f);
        break;
    case RLAB_INIT_XAVIER: {
        double fo = (double)t->shape[t->ndim - 1];
        double fi = t->ndim > 1 ? (double)t->shape[t->ndim - 2] : fo;
        float a = (float)sqrt(6.0 / (fi + fo));
        for (int64_t i = 0; i < t->n; i++)
            x[i] = a * (2.0f * rlab_rng_uniform(rng) - 1.0f);
        break;
    }
    default: /* RLAB_INIT_ZERO: the block is already zero */
        break;
    }
}

rlab_params *rlab_params_new(const rlab_param_spec *specs, int n, rlab_rng *rng, rlab_err *err)
{
    if (n < 0 || (n > 0 && !specs)) {
        rlab_errf(err, RLAB_EINVAL, "params: bad spec list (n = %d)", n);
        return NULL;
    }
    rlab_params *p = rlab_calloc(1, sizeof *p);
    if (!p) {
        rlab_errf(err, RLAB_ENOMEM, "params: out of memory");
        return NULL;
    }
    p->n = n;
    p->t = rlab_calloc((size_t)(n ? n : 1), sizeof *p->t);
    p->row_touched = rlab_calloc((size_t)(n ? n : 1), sizeof *p->row_touched);
    if (!p->t || !p->row_touched)
        goto oom;
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        rlab_tensor *t = &p->t[i];
        if (!set_shape(t, specs[i].ndim, specs[i].shape)) {
            rlab_errf(err, RLAB_EINVAL, "params: bad shape for '%s'", specs[i].name);
            rlab_params_free(p);
            return NULL;
        }
        for (int j = 0; j < i; j++)
            if (strcmp(p->t[j].name, specs[i].name) == 0) {
                rlab_errf(err, RLAB_EINVAL, "params: duplicate name '%s'", specs[i].name);
                rlab_params_free(p);
                return NULL;
            }
        snprintf(t->name, sizeof t->name, "%s", specs[i].name);
        off = (off + 15) & ~(size_t)15;
        t->p.i[0] = (int64_t)off; /* offset into the block, used by checkpoints */
        off += (size_t)t->n;
    }
    p->count = off;
    p->data = rlab_malloc_aligned((off ? off : 1) * sizeof(float));
    p->grad = rlab_malloc_aligned((off ? off : 1) * sizeof(float));
    if (!p->data || !p->grad)
        goto oom;
    memset(p->data, 0, off * sizeof(float));
    memset(p->grad, 0, off * sizeof(float));
    for (int i = 0; i < n; i++) {
        rlab_tensor *t = &p->t[i];
        t->data = p->data + t->p.i[0];
        t->grad = p->grad + t->p.i[0];
        t->flags = RLAB_T_PARAM | RLAB_T_REQUIRES_GRAD;
        t->op = "param";
        init_param(t, &specs[i], rng);
    }
    return p;
oom:
    rlab_params_free(p);
    rlab_errf(err, RLAB_ENOMEM, "params: out of memory");
    return NULL;
}

void rlab_params_free(rlab_params *p)
{
    if (!p)
        return;
    if (p->row_touched)
        for (int i = 0; i < p->n; i++)
            rlab_free(p->row_touched[i]);
    rlab_free(p->row_touched);
    rlab_free(p->t);
    rlab_free_aligned(p->data);
    rlab_free_aligned(p->grad);
    rlab_free(p);
}

rlab_tensor *rlab_params_get(rlab_params *p, const char *name)
{
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->t[i].name, name) == 0)
            return &p->t[i];
    return NULL;
}

int rlab_params_index(const rlab_params *p, const rlab_tensor *t)
{
    if (t < p->t || t >= p->t + p->n)
        return -1;
    return (int)(t - p->t);
}

void rlab_params_zero_grad(rlab_params *p)
{
    rlab_k_zero(p->grad, p->count * sizeof(float));
    for (int i = 0; i < p->n; i++)
        if (p->row_touched[i])
            memset(p->row_touched[i], 0, (size_t)rlab_t_rows(&p->t[i]));
}

int rlab_params_track_rows(rlab_params *p, rlab_tensor *t, rlab_err *err)
{
    int i = rlab_params_index(p, t);
    if (i < 0)
        return rlab_errf(err, RLAB_EINVAL, "params: tensor is not in this block");
    if (!p->row_touched[i]) {
        int64_t rows = rlab_t_rows(t);
        p->row_touched[i] = rlab_calloc((size_t)(rows > 0 ? rows : 1), 1);
        if (!p->row_touched[i])
            return rlab_errf(err, RLAB_ENOMEM, "params: out of memory");
    }
    t->aux[0] = p->row_touched[i]; /* the touched-row flags travel with the tensor */
    return RLAB_OK;
}

void rlab_params_touch_row(rlab_tensor *t, int64_t r)
{
    if ((t->flags & RLAB_T_PARAM) && t->aux[0])
        ((uint8_t *)t->aux[0])[r] = 1;
}

/* ---- threads and determinism ------------------------------------------------------------ */
static int n_threads = 0; /* 0 = library default */
static int deterministic = 0;

void rlab_t_set_num_threads(int n)
{
    n_threads = n > 0 ? n : 1;
    openblas_set_num_threads(n_threads);
#ifdef _OPENMP
    omp_set_num_threads(n_threads);
#endif
}

int rlab_t_num_threads(void)
{
    if (n_threads > 0)
        return n_threads;
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void rlab_t_set_deterministic(int on) { deterministic = on != 0; }

int rlab_t_deterministic(void) { return deterministic; }

/* ---- BLAS kernels ------------------------------------------------------------------------ */
const char *rlab_t_blas_core(void)
{
    const char *c = openblas_get_corename();
    return c ? c : "unknown";
}

const char *rlab_t_blas_pick_core(const char *detected, int avx512, int avx2_fma)
{
    static const char *const generic[] = {"prescott", "core2",   "penryn", "dunnington",
                                          "nehalem",  "unknown", NULL};
    int fallback = !detected || !*detected;
    for (int i = 0; !fallback && generic[i]; i++)
        fallback = strcasecmp(detected, generic[i]) == 0;
    if (!fallback)
        return NULL;
    if (avx512)
        return "SkylakeX";
    if (avx2_fma)
        return "Haswell";
    return NULL;
}

int rlab_t_blas_core_env(void)
{
    if (getenv("OPENBLAS_CORETYPE"))
        return 0;
    int avx512 = 0, avx2_fma = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512vl");
    avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    const char *pick = rlab_t_blas_pick_core(rlab_t_blas_core(), avx512, avx2_fma);
    return pick && setenv("OPENBLAS_CORETYPE", pick, 1) == 0;
}
