/*
 * Test organization: finite-difference gradient checks of every op in core/tensor/ops.h, ids
 * grad.<op>.<n> (one ctest gradcheck.<op> each, see CMakeLists.txt). Every op gets several
 * shapes: batch / size-1 dims, odd sizes (3x7, 2x3x5), and where the op has them padding ids,
 * all-padding rows and masked positions. Non-contiguous views are not applicable: every tensor
 * in reclab is contiguous (reshape is the only view and it is contiguous too), which is also
 * why reshape is checked as "gradient aliasing" (grad.reshape.*) instead.
 * Inputs are seeded N(0,1) leaf parameters; L = sum(r * out) with random r (gradcheck.h).
 */
#include "gradcheck.h"
#include "harness.h"
#include "tensor/kernels.h"
#include "tensor/ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SPEC(nm, nd, ...)                                                                          \
    {                                                                                              \
        nm, nd, {__VA_ARGS__}, RLAB_INIT_NORMAL, 1.0f                                              \
    }

/* run one case; the harness prints the worst element on failure */
#define GC(...)                                                                                    \
    do {                                                                                           \
        rlab_gc_case _c = {__VA_ARGS__};                                                           \
        int _f = rlab_gradcheck(&_c, _c_build, _c_ud);                                             \
        CHECK_MSG(_f == 0, "%s %s: %d gradient element(s) off", _c.op, _c.desc, _f);               \
    } while (0)

/* ---- elementwise -------------------------------------------------------------------------- */
typedef rlab_tensor *(*binop)(rlab_tape *, rlab_tensor *, rlab_tensor *);
/* exact comparisons are intended here: copies, zeros and hand-picked values are exact */
#pragma GCC diagnostic ignored "-Wfloat-equal"

static rlab_tensor *b_binary(rlab_tape *t, rlab_tensor **in, void *ud)
{
    return (*(binop *)ud)(t, in[0], in[1]);
}

static void binary_cases(const char *op, binop f)
{
    rlab_gc_build _c_build = b_binary;
    void *_c_ud = &f;
    GC(.op = op, .desc = "[3,7] . [3,7]", .nin = 2, .in = {SPEC("a", 2, 3, 7), SPEC("b", 2, 3, 7)});
    GC(.op = op, .desc = "[1,5] . [5]", .nin = 2, .in = {SPEC("a", 2, 1, 5), SPEC("b", 1, 5)});
    GC(.op = op, .desc = "[4,3] . [3] row", .nin = 2, .in = {SPEC("a", 2, 4, 3), SPEC("b", 1, 3)});
    GC(.op = op, .desc = "[2,3,5] . [1,5] row", .nin = 2,
       .in = {SPEC("a", 3, 2, 3, 5), SPEC("b", 2, 1, 5)});
    GC(.op = op, .desc = "[3,7] . [1] scalar", .nin = 2,
       .in = {SPEC("a", 2, 3, 7), SPEC("b", 1, 1)});
}

static void t_add(void) { binary_cases("add", rlab_t_add); }
static void t_sub(void) { binary_cases("sub", rlab_t_sub); }
static void t_mul(void) { binary_cases("mul", rlab_t_mul); }

static rlab_tensor *b_scale(rlab_tape *t, rlab_tensor **in, void *ud)
{
    return rlab_t_scale(t, in[0], *(float *)ud);
}

static void t_scale(void)
{
    float s = -1.7f;
    rlab_gc_build _c_build = b_scale;
    void *_c_ud = &s;
    GC(.op = "scale", .desc = "[3,7] x -1.7", .nin = 1, .in = {SPEC("a", 2, 3, 7)});
    s = 0.25f;
    GC(.op = "scale", .desc = "[1,1] x 0.25", .nin = 1, .in = {SPEC("a", 2, 1, 1)});
}

typedef rlab_tensor *(*unop)(rlab_tape *, rlab_tensor *);
static rlab_tensor *b_unary(rlab_tape *t, rlab_tensor **in, void *ud)
{
    return (*(unop *)ud)(t, in[0]);
}

/* push every input at least 0.05 away from 0 (the relu kink; h = 0.01) */
static void nudge_from_zero(rlab_tensor **in, int nin, void *ud)
{
    (void)ud;
    for (int k = 0; k < nin; k++)
        for (int64_t i = 0; i < in[k]->n; i++)
            in[k]->data[i] += in[k]->data[i] >= 0.0f ? 0.05f : -0.05f;
}

static void unary_cases(const char *op, unop f)
{
    rlab_gc_build _c_build = b_unary;
    void *_c_ud = &f;
    GC(.op = op, .desc = "[3,7]", .nin = 1, .in = {SPEC("a", 2, 3, 7)}, .init = nudge_from_zero);
    GC(.op = op, .desc = "[1,4]", .nin = 1, .in = {SPEC("a", 2, 1, 4)}, .init = nudge_from_zero);
    GC(.op = op, .desc = "[2,3,5] x3 scale", .nin = 1,
       .in = {{"a", 3, {2, 3, 5}, RLAB_INIT_NORMAL, 3.0f}}, .init = nudge_from_zero);
}

static void t_relu(void) { unary_cases("relu", rlab_t_relu); }
static void t_gelu(void) { unary_cases("gelu", rlab_t_gelu); }
static void t_sigmoid(void) { unary_cases("sigmoid", rlab_t_sigmoid); }
static void t_tanh(void) { unary_cases("tanh", rlab_t_tanh); }

static rlab_tensor *b_dropout(rlab_tape *t, rlab_tensor **in, void *ud)
{
    return rlab_t_dropout(t, in[0], *(float *)ud);
}

static void t_dropout(void)
{
    float p = 0.3f;
    rlab_gc_build _c_build = b_dropout;
    void *_c_ud = &p;
    GC(.op = "dropout", .desc = "[3,7] p 0.3 training", .nin = 1, .in = {SPEC("a", 2, 3, 7)},
       .training = 1);
    p = 0.5f;
    GC(.op = "dropout", .desc = "[2,3,5] p 0.5 training", .nin = 1, .in = {SPEC("a", 3, 2, 3, 5)},
       .training = 1, .seed = 99);
    GC(.op = "dropout", .desc = "[1,6] p 0.5 eval (identity)", .nin = 1, .in = {SPEC("a", 2, 1, 6)},
       .training = 0);
}

/* ---- products ------------------------------------------------------------------------------ */
typedef struct mm_ud {
    int ta, tb;
} mm_ud;

static rlab_tensor *b_matmul(rlab_tape *t, rlab_tensor **in, void *ud)
{
    mm_ud *u = ud;
    return rlab_t_matmul(t, in[0], in[1], u->ta, u->tb);
}

static rlab_tensor *b_bmm(rlab_tape *t, rlab_tensor **in, void *ud)
{
    mm_ud *u = ud;
    return rlab_t_bmm(t, in[0], in[1], u->ta, u->tb);
}

static void t_matmul(void)
{
    mm_ud u = {0, 0};
    rlab_gc_build _c_build = b_matmul;
    void *_c_ud = &u;
    GC(.op = "matmul", .desc = "[3,5]x[5,4]", .nin = 2,
       .in = {SPEC("a", 2, 3, 5), SPEC("b", 2, 5, 4)});
    u = (mm_ud){1, 0};
    GC(.op = "matmul", .desc = "[5,3]^T x[5,4]", .nin = 2,
       .in = {SPEC("a", 2, 5, 3), SPEC("b", 2, 5, 4)});
    u = (mm_ud){0, 1};
    GC(.op = "matmul", .desc = "[3,5]x[4,5]^T", .nin = 2,
       .in = {SPEC("a", 2, 3, 5), SPEC("b", 2, 4, 5)});
    u = (mm_ud){1, 1};
    GC(.op = "matmul", .desc = "[5,3]^T x[4,5]^T", .nin = 2,
       .in = {SPEC("a", 2, 5, 3), SPEC("b", 2, 4, 5)});
    u = (mm_ud){0, 0};
    GC(.op = "matmul", .desc = "[2,3,7]x[7,3] leading dims", .nin = 2,
       .in = {SPEC("a", 3, 2, 3, 7), SPEC("b", 2, 7, 3)});
    GC(.op = "matmul", .desc = "[1,5]x[5,1] batch 1", .nin = 2,
       .in = {SPEC("a", 2, 1, 5), SPEC("b", 2, 5, 1)});
}

static void t_bmm(void)
{
    mm_ud u = {0, 0};
    rlab_gc_build _c_build = b_bmm;
    void *_c_ud = &u;
    GC(.op = "bmm", .desc = "[2,3,5]x[2,5,4]", .nin = 2,
       .in = {SPEC("a", 3, 2, 3, 5), SPEC("b", 3, 2, 5, 4)});
    u = (mm_ud){1, 0};
    GC(.op = "bmm", .desc = "[2,5,3]^T x[2,5,4]", .nin = 2,
       .in = {SPEC("a", 3, 2, 5, 3), SPEC("b", 3, 2, 5, 4)});
    u = (mm_ud){0, 1};
    GC(.op = "bmm", .desc = "[3,3,7]x[3,4,7]^T", .nin = 2,
       .in = {SPEC("a", 3, 3, 3, 7), SPEC("b", 3, 3, 4, 7)});
    u = (mm_ud){1, 1};
    GC(.op = "bmm", .desc = "[1,5,3]^T x[1,4,5]^T batch 1", .nin = 2,
       .in = {SPEC("a", 3, 1, 5, 3), SPEC("b", 3, 1, 4, 5)});
}

/* ---- indexing and shape ---------------------------------------------------------------------- */
typedef struct gather_ud {
    const int32_t *ids;
    int64_t n, pad;
    int ndim;
    int64_t shape[4];
} gather_ud;

static rlab_tensor *b_gather(rlab_tape *t, rlab_tensor **in, void *ud)
{
    gather_ud *u = ud;
    return rlab_t_gather(t, in[0], u->ids, u->n, u->pad, u->ndim, u->ndim ? u->shape : NULL);
}

static void t_gather(void)
{
    /* repeats (2 twice), a negative id, and the pad id 3 */
    static const int32_t ids[6] = {0, 2, 2, 5, -1, 3};
    static const int32_t allpad[4] = {3, -1, 3, 3};
    gather_ud u = {ids, 6, 3, 3, {2, 3, 4}};
    rlab_gc_build _c_build = b_gather;
    void *_c_ud = &u;
    GC(.op = "gather", .desc = "[6,4] ids x6 -> [2,3,4] with repeats and padding", .nin = 1,
       .in = {SPEC("table", 2, 6, 4)});
    u = (gather_ud){allpad, 4, 3, 0, {0}};
    GC(.op = "gather", .desc = "[6,4] all-padding ids -> [4,4]", .nin = 1,
       .in = {SPEC("table", 2, 6, 4)});
    static const int32_t one[1] = {4};
    u = (gather_ud){one, 1, 5, 0, {0}};
    GC(.op = "gather", .desc = "[5,3] one id, pad = V", .nin = 1, .in = {SPEC("table", 2, 5, 3)});
}

typedef struct reshape_ud {
    int ndim, mode; /* mode 0: reshape(x); 1: scale(reshape(x)); 2: reshape(tanh(x)) */
    int64_t shape[4];
} reshape_ud;

static rlab_tensor *b_reshape(rlab_tape *t, rlab_tensor **in, void *ud)
{
    reshape_ud *u = ud;
    if (u->mode == 2)
        return rlab_t_reshape(t, rlab_t_tanh(t, in[0]), u->ndim, u->shape);
    rlab_tensor *v = rlab_t_reshape(t, in[0], u->ndim, u->shape);
    return u->mode == 1 ? rlab_t_mul(t, v, v) : v;
}

static void t_reshape(void)
{
    reshape_ud u = {2, 0, {2, 6}};
    rlab_gc_build _c_build = b_reshape;
    void *_c_ud = &u;
    GC(.op = "reshape", .desc = "[3,4] -> [2,6] (grad aliases the param's)", .nin = 1,
       .in = {SPEC("a", 2, 3, 4)});
    u = (reshape_ud){3, 1, {-1, 1, 3}};
    GC(.op = "reshape", .desc = "[3,4] -> [-1,1,3] then v*v", .nin = 1, .in = {SPEC("a", 2, 3, 4)});
    u = (reshape_ud){1, 2, {15}};
    GC(.op = "reshape", .desc = "tanh([3,5]) -> [15]", .nin = 1, .in = {SPEC("a", 2, 3, 5)});
}

static rlab_tensor *b_concat_n(rlab_tape *t, rlab_tensor **in, void *ud)
{
    int *u = ud; /* u[0] = n inputs, u[1] = axis */
    return rlab_t_concat(t, in, u[0], u[1]);
}

static void t_concat(void)
{
    int u[2] = {3, 0};
    rlab_gc_build _c_build = b_concat_n;
    void *_c_ud = u;
    GC(.op = "concat", .desc = "axis 0: [2,3]+[1,3]+[4,3]", .nin = 3,
       .in = {SPEC("a", 2, 2, 3), SPEC("b", 2, 1, 3), SPEC("c", 2, 4, 3)});
    u[1] = 1;
    GC(.op = "concat", .desc = "axis 1: [3,2]+[3,1]+[3,5]", .nin = 3,
       .in = {SPEC("a", 2, 3, 2), SPEC("b", 2, 3, 1), SPEC("c", 2, 3, 5)});
    u[1] = -1;
    u[0] = 2;
    GC(.op = "concat", .desc = "axis -1 of 3-D: [2,3,2]+[2,3,3]", .nin = 2,
       .in = {SPEC("a", 3, 2, 3, 2), SPEC("b", 3, 2, 3, 3)});
    u[0] = 5;
    u[1] = 1;
    GC(.op = "concat", .desc = "5 inputs (> 4 sources) axis 1 of [2,k,3]", .nin = 5,
       .in = {SPEC("a", 3, 2, 1, 3), SPEC("b", 3, 2, 2, 3), SPEC("c", 3, 2, 1, 3),
              SPEC("d", 3, 2, 3, 3), SPEC("e", 3, 2, 1, 3)});
}

static rlab_tensor *b_slice(rlab_tape *t, rlab_tensor **in, void *ud)
{
    int64_t *u = ud; /* axis, start, len */
    return rlab_t_slice(t, in[0], (int)u[0], u[1], u[2]);
}

static void t_slice(void)
{
    int64_t u[3] = {1, 2, 3};
    rlab_gc_build _c_build = b_slice;
    void *_c_ud = u;
    GC(.op = "slice", .desc = "[3,7] axis 1 [2,5)", .nin = 1, .in = {SPEC("a", 2, 3, 7)});
    u[0] = 0, u[1] = 1, u[2] = 1;
    GC(.op = "slice", .desc = "[2,3,4] axis 0 [1,2)", .nin = 1, .in = {SPEC("a", 3, 2, 3, 4)});
    u[0] = 1, u[1] = 0, u[2] = 2;
    GC(.op = "slice", .desc = "[2,3,4] axis 1 [0,2)", .nin = 1, .in = {SPEC("a", 3, 2, 3, 4)});
}

static rlab_tensor *b_transpose(rlab_tape *t, rlab_tensor **in, void *ud)
{
    (void)ud;
    return rlab_t_transpose(t, in[0]);
}

static void t_transpose(void)
{
    rlab_gc_build _c_build = b_transpose;
    void *_c_ud = NULL;
    GC(.op = "transpose", .desc = "[3,7]", .nin = 1, .in = {SPEC("a", 2, 3, 7)});
    GC(.op = "transpose", .desc = "[1,5]", .nin = 1, .in = {SPEC("a", 2, 1, 5)});
    GC(.op = "transpose", .desc = "[37,33] (crosses cache blocks)", .nin = 1,
       .in = {SPEC("a", 2, 37, 33)}, .max_check = 200);
}

/* ---- reductions ---------------------------------------------------------------------------- */
typedef struct red_ud {
    int axis, mean;
} red_ud;

static rlab_tensor *b_reduce(rlab_tape *t, rlab_tensor **in, void *ud)
{
    red_ud *u = ud;
    return u->mean ? rlab_t_mean(t, in[0], u->axis) : rlab_t_sum(t, in[0], u->axis);
}

static void reduce_cases(const char *op, int mean)
{
    red_ud u = {0, mean};
    rlab_gc_build _c_build = b_reduce;
    void *_c_ud = &u;
    GC(.op = op, .desc = "[3,7] axis 0", .nin = 1, .in = {SPEC("a", 2, 3, 7)});
    u.axis = 1;
    GC(.op = op, .desc = "[3,7] axis 1", .nin = 1, .in = {SPEC("a", 2, 3, 7)});
    GC(.op = op, .desc = "[2,3,4] axis 1", .nin = 1, .in = {SPEC("a", 3, 2, 3, 4)});
    u.axis = -1;
    GC(.op = op, .desc = "[5] axis -1 -> [1]", .nin = 1, .in = {SPEC("a", 1, 5)});
}

static void t_sum(void) { reduce_cases("sum", 0); }
static void t_mean(void) { reduce_cases("mean", 1); }

static rlab_tensor *b_all(rlab_tape *t, rlab_tensor **in, void *ud)
{
    return *(int *)ud ? rlab_t_mean_all(t, in[0]) : rlab_t_sum_all(t, in[0]);
}

static void all_cases(const char *op, int mean)
{
    rlab_gc_build _c_build = b_all;
    void *_c_ud = &mean;
    GC(.op = op, .desc = "[3,7]", .nin = 1, .in = {SPEC("a", 2, 3, 7)});
    GC(.op = op, .desc = "[1]", .nin = 1, .in = {SPEC("a", 1, 1)});
    GC(.op = op, .desc = "[2,3,5]", .nin = 1, .in = {SPEC("a", 3, 2, 3, 5)});
}

static void t_sum_all(void) { all_cases("sum_all", 0); }
static void t_mean_all(void) { all_cases("mean_all", 1); }

/* ---- layer norm, softmax, masks ----------------------------------------------------------------
 */
static rlab_tensor *b_layernorm(rlab_tape *t, rlab_tensor **in, void *ud)
{
    int mode = *(int *)ud; /* 0: gain+bias, 1: no gain, 2: no bias, 3: neither */
    rlab_tensor *g = mode == 0 || mode == 2 ? in[1] : NULL;
    rlab_tensor *b = mode == 0 ? in[2] : mode == 1 ? in[1] : NULL;
    return rlab_t_layernorm(t, in[0], g, b, 1e-5f);
}

static void t_layernorm(void)
{
    int mode = 0;
    rlab_gc_build _c_build = b_layernorm;
    void *_c_ud = &mode;
    GC(.op = "layernorm", .desc = "[3,7] gain+bias", .nin = 3,
       .in = {SPEC("x", 2, 3, 7), SPEC("g", 1, 7), SPEC("b", 1, 7)});
    mode = 1;
    GC(.op = "layernorm", .desc = "[2,3,5] bias only", .nin = 2,
       .in = {SPEC("x", 3, 2, 3, 5), SPEC("b", 1, 5)});
    mode = 2;
    GC(.op = "layernorm", .desc = "[1,8] gain only", .nin = 2,
       .in = {SPEC("x", 2, 1, 8), SPEC("g", 1, 8)});
    mode = 3;
    GC(.op = "layernorm", .desc = "[4,1] C = 1 (constant output)", .nin = 1,
       .in = {SPEC("x", 2, 4, 1)});
    GC(.op = "layernorm", .desc = "[3,64] plain", .nin = 1, .in = {SPEC("x", 2, 3, 64)},
       .max_check = 96);
}

static rlab_tensor *b_softmax(rlab_tape *t, rlab_tensor **in, void *ud)
{
    (void)ud;
    return rlab_t_softmax(t, in[0]);
}

static void t_softmax(void)
{
    rlab_gc_build _c_build = b_softmax;
    void *_c_ud = NULL;
    GC(.op = "softmax", .desc = "[3,7]", .nin = 1, .in = {SPEC("a", 2, 3, 7)});
    GC(.op = "softmax", .desc = "[1,1]", .nin = 1, .in = {SPEC("a", 2, 1, 1)});
    GC(.op = "softmax", .desc = "[2,3,5] x3 scale", .nin = 1,
       .in = {{"a", 3, {2, 3, 5}, RLAB_INIT_NORMAL, 3.0f}});
}

typedef struct mask_ud {
    const uint8_t *mask;
    int64_t n;
    float value;
    int then_softmax;
} mask_ud;

static rlab_tensor *b_masked_fill(rlab_tape *t, rlab_tensor **in, void *ud)
{
    mask_ud *u = ud;
    rlab_tensor *y = rlab_t_masked_fill(t, in[0], u->mask, u->n, u->value);
    return u->then_softmax ? rlab_t_softmax(t, y) : y;
}

static void t_masked_fill(void)
{
    static const uint8_t full[21] = {1, 0, 0, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const uint8_t row[5] = {0, 1, 0, 0, 1};
    mask_ud u = {full, 21, 2.5f, 0};
    rlab_gc_build _c_build = b_masked_fill;
    void *_c_ud = &u;
    GC(.op = "masked_fill", .desc = "[3,7] full mask", .nin = 1, .in = {SPEC("a", 2, 3, 7)});
    u = (mask_ud){row, 5, -1e9f, 1};
    GC(.op = "masked_fill", .desc = "[2,3,5] row mask -1e9 then softmax", .nin = 1,
       .in = {SPEC("a", 3, 2, 3, 5)});
    static const uint8_t allm[3] = {1, 1, 1};
    u = (mask_ud){allm, 3, 0.0f, 0};
    GC(.op = "masked_fill", .desc = "[2,3] everything masked", .nin = 1,
       .in = {SPEC("a", 2, 2, 3)});
}

static rlab_tensor *b_mask_rows(rlab_tape *t, rlab_tensor **in, void *ud)
{
    return rlab_t_mask_rows(t, in[0], ud);
}

static void t_mask_rows(void)
{
    static uint8_t valid[6] = {0, 1, 1, 0, 0, 0}; /* the second sequence is all padding */
    rlab_gc_build _c_build = b_mask_rows;
    void *_c_ud = valid;
    GC(.op = "mask_rows", .desc = "[2,3,4] with an all-padding sequence", .nin = 1,
       .in = {SPEC("x", 3, 2, 3, 4)});
    static uint8_t one[1] = {1};
    _c_ud = one;
    GC(.op = "mask_rows", .desc = "[1,1,3]", .nin = 1, .in = {SPEC("x", 3, 1, 1, 3)});
}

typedef struct cma_ud {
    const uint8_t *valid;
    int L;
} cma_ud;

static rlab_tensor *b_cma(rlab_tape *t, rlab_tensor **in, void *ud)
{
    cma_ud *u = ud;
    return rlab_t_causal_moving_avg(t, in[0], u->valid, u->L);
}

static void t_cma(void)
{
    /* left padding (as MQSA-TED's data), a hole in the middle, and an all-padding sequence */
    static const uint8_t valid[15] = {0, 0, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 0, 0};
    cma_ud u = {valid, 3};
    rlab_gc_build _c_build = b_cma;
    void *_c_ud = &u;
    GC(.op = "causal_moving_avg", .desc = "[3,5,3] L 3 padding", .nin = 1,
       .in = {SPEC("x", 3, 3, 5, 3)});
    u.L = 1;
    GC(.op = "causal_moving_avg", .desc = "[3,5,3] L 1", .nin = 1, .in = {SPEC("x", 3, 3, 5, 3)});
    u = (cma_ud){NULL, 3};
    GC(.op = "causal_moving_avg", .desc = "[1,7,2] L 3 all valid (NULL)", .nin = 1,
       .in = {SPEC("x", 3, 1, 7, 2)});
    u = (cma_ud){valid, 9};
    GC(.op = "causal_moving_avg", .desc = "[3,5,3] L 9 > T", .nin = 1,
       .in = {SPEC("x", 3, 3, 5, 3)});
}

/* linear: act(x w + b) + r; ud selects the variant */
typedef struct lin_ud {
    int bias, res, act;
} lin_ud;

static rlab_tensor *b_linear(rlab_tape *t, rlab_tensor **in, void *ud)
{
    const lin_ud *u = ud;
    int k = 2;
    rlab_tensor *b = u->bias ? in[k++] : NULL;
    rlab_tensor *r = u->res ? in[k++] : NULL;
    return rlab_t_linear(t, in[0], in[1], b, r, u->act);
}

/* pre-activations at least 0.1 away from the ReLU kink: shift the bias column by column */
static void lin_away_from_kink(rlab_tensor **in, int nin, void *ud)
{
    (void)nin, (void)ud;
    const rlab_tensor *x = in[0], *w = in[1];
    rlab_tensor *b = in[2];
    const int64_t M = rlab_t_rows(x), K = w->shape[0], N = w->shape[1];
    for (int64_t n = 0; n < N; n++) {
        for (int tries = 0; tries < 64; tries++) {
            int near = 0;
            for (int64_t m = 0; m < M; m++) {
                float z = b->data[n];
                for (int64_t k = 0; k < K; k++)
                    z += x->data[m * K + k] * w->data[k * N + n];
                near |= fabsf(z) < 0.1f;
            }
            if (!near)
                break;
            b->data[n] += 0.037f;
        }
    }
}

static void t_linear(void)
{
    lin_ud u = {0, 0, RLAB_ACT_NONE};
    rlab_gc_build _c_build = b_linear;
    void *_c_ud = &u;
    GC(.op = "linear", .desc = "[3,5]x[5,4]", .nin = 2,
       .in = {SPEC("x", 2, 3, 5), SPEC("w", 2, 5, 4)});
    u.bias = 1;
    GC(.op = "linear", .desc = "[2,3,5]x[5,4] + b", .nin = 3,
       .in = {SPEC("x", 3, 2, 3, 5), SPEC("w", 2, 5, 4), SPEC("b", 1, 4)});
    u.act = RLAB_ACT_RELU;
    GC(.op = "linear", .desc = "relu([4,6]x[6,3] + b)", .nin = 3,
       .in = {SPEC("x", 2, 4, 6), SPEC("w", 2, 6, 3), SPEC("b", 1, 3)}, .init = lin_away_from_kink);
    u.act = RLAB_ACT_NONE;
    u.res = 1;
    GC(.op = "linear", .desc = "[3,5]x[5,4] + b + r", .nin = 4,
       .in = {SPEC("x", 2, 3, 5), SPEC("w", 2, 5, 4), SPEC("b", 1, 4), SPEC("r", 2, 3, 4)});
    GC(.op = "linear", .desc = "[2,5,64]x[64,64] + b + r (64-wide tiles)", .nin = 4,
       .in = {SPEC("x", 3, 2, 5, 64), SPEC("w", 2, 64, 64), SPEC("b", 1, 64),
              SPEC("r", 3, 2, 5, 64)});
    u.bias = 0;
    GC(.op = "linear", .desc = "[1,7]x[7,2] + r", .nin = 3,
       .in = {SPEC("x", 2, 1, 7), SPEC("w", 2, 7, 2), SPEC("r", 2, 1, 2)});
}

/* linear_multi: x and n weights; ud: -1 returns the stacked output, s >= 0 the view of
 * output s alone (its gradient must reach x and w[s] only, through the aliased grad) */
typedef struct lmul_ud {
    int which, n;
} lmul_ud;

static rlab_tensor *b_linear_multi(rlab_tape *t, rlab_tensor **in, void *ud)
{
    const lmul_ud *u = ud;
    rlab_tensor *o[3];
    rlab_tensor *all = rlab_t_linear_multi(t, in[0], u->n, in + 1, o);
    return u->which < 0 ? all : o[u->which];
}

static void t_linear_multi(void)
{
    lmul_ud u = {-1, 2};
    rlab_gc_build _c_build = b_linear_multi;
    void *_c_ud = &u;
    GC(.op = "linear_multi", .desc = "[3,5]x2[5,4]", .nin = 3,
       .in = {SPEC("x", 2, 3, 5), SPEC("w0", 2, 5, 4), SPEC("w1", 2, 5, 4)});
    u.n = 3;
    GC(.op = "linear_multi", .desc = "[2,5,64]x3[64,64] (64-wide tiles)", .nin = 4,
       .in = {SPEC("x", 3, 2, 5, 64), SPEC("w0", 2, 64, 64), SPEC("w1", 2, 64, 64),
              SPEC("w2", 2, 64, 64)});
    u.which = 1;
    GC(.op = "linear_multi", .desc = "[4,64]x3[64,64], the view of output 1", .nin = 4,
       .in = {SPEC("x", 2, 4, 64), SPEC("w0", 2, 64, 64), SPEC("w1", 2, 64, 64),
              SPEC("w2", 2, 64, 64)});
    u = (lmul_ud){0, 1};
    GC(.op = "linear_multi", .desc = "[1,7]x1[7,3], the view", .nin = 2,
       .in = {SPEC("x", 2, 1, 7), SPEC("w0", 2, 7, 3)});
}

/* layernorm_linear_multi: x, n weights, then gain and bias when affine, then the linear's
 * bias when lbias (one weight) */
typedef struct lnlin_ud {
    int which, n, affine, lbias, act;
} lnlin_ud;

static rlab_tensor *b_ln_linear_multi(rlab_tape *t, rlab_tensor **in, void *ud)
{
    const lnlin_ud *u = ud;
    rlab_tensor *o[3];
    rlab_tensor *g = u->affine ? in[1 + u->n] : NULL, *b = u->affine ? in[2 + u->n] : NULL;
    rlab_tensor **lb = u->lbias ? in + 1 + u->n + 2 * u->affine : NULL;
    rlab_tensor *all =
        rlab_t_layernorm_linear_multi(t, in[0], g, b, 1e-5f, u->n, in + 1, lb, u->act, o);
    return u->which < 0 ? all : o[u->which];
}

/* in: x, w, b (no gain/bias): shift b column by column until every preactivation LN(x) w + b
 * is at least 0.1 from 0 */
static void lnlin_away_from_kink(rlab_tensor **in, int nin, void *ud)
{
    (void)nin, (void)ud;
    const rlab_tensor *x = in[0], *w = in[1];
    rlab_tensor *b = in[2];
    const int64_t M = rlab_t_rows(x), K = w->shape[0], N = w->shape[1];
    float *h = malloc((size_t)(M * K) * sizeof *h), *st = malloc(2 * (size_t)M * sizeof *st);
    if (!h || !st) {
        free(h), free(st);
        return;
    }
    rlab_ref_layernorm_fwd(h, st, st + M, x->data, NULL, NULL, M, K, 1e-5f);
    for (int64_t n = 0; n < N; n++)
        for (int tries = 0; tries < 64; tries++) {
            int near = 0;
            for (int64_t m = 0; m < M; m++) {
                float z = b->data[n];
                for (int64_t k = 0; k < K; k++)
                    z += h[m * K + k] * w->data[k * N + n];
                near |= fabsf(z) < 0.1f;
            }
            if (!near)
                break;
            b->data[n] += 0.037f;
        }
    free(h), free(st);
}

static void t_ln_linear_multi(void)
{
    lnlin_ud u = {-1, 2, 1, 0, RLAB_ACT_NONE};
    rlab_gc_build _c_build = b_ln_linear_multi;
    void *_c_ud = &u;
    GC(.op = "layernorm_linear_multi", .desc = "LN[3,5] x2[5,4], gain+bias", .nin = 5,
       .in = {SPEC("x", 2, 3, 5), SPEC("w0", 2, 5, 4), SPEC("w1", 2, 5, 4), SPEC("g", 1, 5),
              SPEC("b", 1, 5)});
    u = (lnlin_ud){-1, 3, 1, 0, RLAB_ACT_NONE};
    /* few rows: the float32 loss over n x 64 outputs per row carries rounding noise of ~1e-5,
     * which the central difference divides by 2h (the backprop equals the separate ops' to
     * 1e-5, tensor.linear.4) */
    GC(.op = "layernorm_linear_multi", .desc = "LN[1,3,64] x3[64,64] (64-wide tiles)", .nin = 6,
       .in = {SPEC("x", 3, 1, 3, 64), SPEC("w0", 2, 64, 64), SPEC("w1", 2, 64, 64),
              SPEC("w2", 2, 64, 64), SPEC("g", 1, 64), SPEC("b", 1, 64)});
    u = (lnlin_ud){2, 3, 0, 0, RLAB_ACT_NONE};
    GC(.op = "layernorm_linear_multi", .desc = "LN[2,64] x3[64,64], plain, the view of 2", .nin = 4,
       .in = {SPEC("x", 2, 2, 64), SPEC("w0", 2, 64, 64), SPEC("w1", 2, 64, 64),
              SPEC("w2", 2, 64, 64)});
    u = (lnlin_ud){-1, 1, 1, 1, RLAB_ACT_NONE};
    GC(.op = "layernorm_linear_multi", .desc = "LN[2,64] x[64,64] + b (tiles)", .nin = 5,
       .in = {SPEC("x", 2, 2, 64), SPEC("w0", 2, 64, 64), SPEC("g", 1, 64), SPEC("b", 1, 64),
              SPEC("b0", 1, 64)});
    u = (lnlin_ud){-1, 1, 0, 1, RLAB_ACT_RELU};
    GC(.op = "layernorm_linear_multi", .desc = "relu(LN[2,64] x[64,64] + b) (tiles)", .nin = 3,
       .in = {SPEC("x", 2, 2, 64), SPEC("w0", 2, 64, 64), SPEC("b0", 1, 64)},
       .init = lnlin_away_from_kink);
    GC(.op = "layernorm_linear_multi", .desc = "relu(LN[3,5] x[5,4] + b)", .nin = 3,
       .in = {SPEC("x", 2, 3, 5), SPEC("w0", 2, 5, 4), SPEC("b0", 1, 4)},
       .init = lnlin_away_from_kink);
}

typedef struct spmm_ud {
    int64_t R;
    const int64_t *rp;
    const int32_t *col;
    const float *val;
} spmm_ud;

static rlab_tensor *b_spmm(rlab_tape *t, rlab_tensor **in, void *ud)
{
    const spmm_ud *u = ud;
    return rlab_t_spmm(t, u->R, u->rp, u->col, u->val, in[0]);
}

static void t_spmm(void)
{
    /* 4 output rows over x [5, 3]: a repeated column, an empty row, a row using every x row */
    static const int64_t rp[5] = {0, 3, 3, 4, 9};
    static const int32_t col[9] = {0, 2, 2, 4, 0, 1, 2, 3, 4};
    static const float val[9] = {0.5f, -1.0f, 2.0f, 0.25f, 1.0f, 1.0f, -0.5f, 3.0f, 1.5f};
    spmm_ud u = {4, rp, col, val};
    rlab_gc_build _c_build = b_spmm;
    void *_c_ud = &u;
    GC(.op = "spmm", .desc = "CSR [4,5] x [5,3] with values", .nin = 1, .in = {SPEC("x", 2, 5, 3)});
    u.val = NULL;
    GC(.op = "spmm", .desc = "CSR [4,5] x [5,3] all ones", .nin = 1, .in = {SPEC("x", 2, 5, 3)});
}

static const rlab_test tests[] = {
    {"grad.add.1", t_add},
    {"grad.sub.1", t_sub},
    {"grad.mul.1", t_mul},
    {"grad.scale.1", t_scale},
    {"grad.relu.1", t_relu},
    {"grad.gelu.1", t_gelu},
    {"grad.sigmoid.1", t_sigmoid},
    {"grad.tanh.1", t_tanh},
    {"grad.dropout.1", t_dropout},
    {"grad.matmul.1", t_matmul},
    {"grad.bmm.1", t_bmm},
    {"grad.gather.1", t_gather},
    {"grad.reshape.1", t_reshape},
    {"grad.concat.1", t_concat},
    {"grad.slice.1", t_slice},
    {"grad.transpose.1", t_transpose},
    {"grad.sum.1", t_sum},
    {"grad.mean.1", t_mean},
    {"grad.sum_all.1", t_sum_all},
    {"grad.mean_all.1", t_mean_all},
    {"grad.layernorm.1", t_layernorm},
    {"grad.softmax.1", t_softmax},
    {"grad.masked_fill.1", t_masked_fill},
    {"grad.mask_rows.1", t_mask_rows},
    {"grad.causal_moving_avg.1", t_cma},
    {"grad.spmm.1", t_spmm},
    {"grad.linear.1", t_linear},
    {"grad.linear_multi.1", t_linear_multi},
    {"grad.layernorm_linear_multi.1", t_ln_linear_multi},
    {NULL, NULL},
};

int main(int argc, char **argv) { return rlab_test_main(argc, argv, tests); }
