/*
 * plugins/reloop/memory.c: the error memory of ReLoop2, an LSH sketch of (key, error) pairs.
 *
 * Hashing: R tables, each with b random hyperplanes drawn N(0, 1) from the seed (SimHash,
 * Charikar 2002): code_r(x) = the b sign bits of <plane, x>. Keys whose angle is small share
 * codes with high probability, so a bucket holds samples similar to each other.
 *
 * Buckets are addressed directly (dir[r][code] = slot or -1; b <= 16 keeps the directory at
 * R * 2^b int32) and live in a pool of `cap` slots. When the pool is full the slot created
 * longest ago is recycled (a ring), which is the size cap and a second forgetting mechanism.
 *
 *   aggregated slot:  sum of unit keys [D], sum of errors, mass (count), last tick
 *   FIFO slot:        F entries (unit key [D], error, tick, sample id), a ring
 *
 * Decay is lazy: an aggregated slot scales its sums by decay^(now - last) when touched; a FIFO
 * entry's weight is decay^(now - tick) at lookup. A lookup gathers the candidates of the R
 * buckets the query falls in (a FIFO sample written to R tables is counted once, by id), keeps
 * the k most cosine-similar, and averages their errors with weights mass * exp((cos - 1) / tau)
 * plus `shrink` pseudo-samples of error 0 (a prior that keeps thin evidence from moving p).
 */
#include "reloop.h"

#include <math.h>
#include <string.h>

struct reloop_mem {
    reloop_mem_opts o;
    int D, R, B, F;
    float *planes;   /* [D][R * B] hyperplanes, transposed */
    int32_t *dir;    /* [R][2^B] slot or -1 */
    int64_t cap;     /* slots */
    size_t slot_fl;  /* floats per slot */
    float *store;    /* [cap][slot_fl] keys (and FIFO errors) */
    int32_t *s_code; /* [cap] code of the slot, -1 = free */
    int8_t *s_tab;   /* [cap] table of the slot */
    int64_t *s_tick; /* [cap] aggregated: tick of the last update */
    float *s_err;    /* [cap] aggregated: sum of errors */
    float *s_mass;   /* [cap] aggregated: mass */
    int32_t *s_n;    /* [cap] FIFO: entries held; aggregated: unused */
    int32_t *s_head; /* [cap] FIFO: next write position */
    int64_t *e_tick; /* [cap][F] FIFO entry ticks */
    uint64_t *e_id;  /* [cap][F] FIFO entry sample ids */
    float *e_err;    /* [cap][F] FIFO entry errors */
    int64_t next;    /* next slot to hand out (ring over the pool) */
    int64_t used;    /* slots in use */
    int64_t tick;
    uint64_t n_ins;   /* samples written */
    float *decay_pow; /* [64] decay^a for small ages */
};

reloop_mem_opts reloop_mem_defaults(int dim)
{
    return (reloop_mem_opts){.dim = dim,
                             .tables = 4,
                             .bits = 10,
                             .fifo = 0,
                             .k = 16,
                             .tau = 0.1f,
                             .decay = 0.7f,
                             .cap = 16384,
                             .min_err = 0.0f,
                             .shrink = 0.0f,
                             .seed = 1};
}

void reloop_mem_free(reloop_mem *m)
{
    if (!m)
        return;
    rlab_free(m->planes);
    rlab_free(m->dir);
    rlab_free(m->store);
    rlab_free(m->s_code);
    rlab_free(m->s_tab);
    rlab_free(m->s_tick);
    rlab_free(m->s_err);
    rlab_free(m->s_mass);
    rlab_free(m->s_n);
    rlab_free(m->s_head);
    rlab_free(m->e_tick);
    rlab_free(m->e_id);
    rlab_free(m->e_err);
    rlab_free(m->decay_pow);
    rlab_free(m);
}

void reloop_mem_clear(reloop_mem *m)
{
    memset(m->dir, 0xff, (size_t)m->R * ((size_t)1 << m->B) * sizeof(int32_t));
    for (int64_t s = 0; s < m->cap; s++)
        m->s_code[s] = -1;
    m->next = m->used = 0;
    m->tick = 0;
    m->n_ins = 0;
}

reloop_mem *reloop_mem_new(const reloop_mem_opts *o, rlab_err *err)
{
#define BAD(cond, ...)                                                                             \
    do {                                                                                           \
        if (cond) {                                                                                \
            rlab_errf(err, RLAB_EINVAL, "reloop memory: " __VA_ARGS__);                            \
            return NULL;                                                                           \
        }                                                                                          \
    } while (0)
    BAD(o->dim < 1, "key size must be >= 1 (got %d)", o->dim);
    BAD(o->tables < 1 || o->tables > RELOOP_MAX_TABLES, "tables must be in [1, %d] (got %d)",
        RELOOP_MAX_TABLES, o->tables);
    BAD(o->bits < 1 || o->bits > RELOOP_MAX_BITS, "bits must be in [1, %d] (got %d)",
        RELOOP_MAX_BITS, o->bits);
    BAD(o->fifo < 0 || o->fifo > RELOOP_MAX_FIFO, "fifo must be in [0, %d] (got %d)",
        RELOOP_MAX_FIFO, o->fifo);
    BAD(o->k < 1 || o->k > RELOOP_MAX_K, "k must be in [1, %d] (got %d)", RELOOP_MAX_K, o->k);
    BAD(!(o->tau > 0.0f), "tau must be > 0");
    BAD(!(o->decay > 0.0f && o->decay <= 1.0f), "decay must be in (0, 1]");
    BAD(o->cap < 1 || o->cap > ((int64_t)1 << 30), "cap must be in [1, 2^30] buckets");
    BAD(!(o->min_err >= 0.0f), "min_err must be >= 0");
    BAD(!(o->shrink >= 0.0f), "shrink must be >= 0");
#undef BAD
    reloop_mem *m = rlab_calloc(1, sizeof *m);
    if (!m) {
        rlab_errf(err, RLAB_ENOMEM, "reloop memory: out of memory");
        return NULL;
    }
    m->o = *o;
    m->D = o->dim;
    m->R = o->tables;
    m->B = o->bits;
    m->F = o->fifo;
    m->cap = o->cap;
    m->slot_fl = m->F ? (size_t)m->F * (size_t)m->D : (size_t)m->D;
    size_t nd = (size_t)m->R << m->B, cap = (size_t)m->cap, F = m->F ? (size_t)m->F : 1;
    m->planes = rlab_malloc((size_t)m->R * (size_t)m->B * (size_t)m->D * sizeof(float));
    m->dir = rlab_malloc(nd * sizeof(int32_t));
    m->store = rlab_malloc(cap * m->slot_fl * sizeof(float));
    m->s_code = rlab_malloc(cap * sizeof(int32_t));
    m->s_tab = rlab_malloc(cap);
    m->s_tick = rlab_malloc(cap * sizeof(int64_t));
    m->s_err = rlab_malloc(cap * sizeof(float));
    m->s_mass = rlab_malloc(cap * sizeof(float));
    m->s_n = rlab_malloc(cap * sizeof(int32_t));
    m->s_head = rlab_malloc(cap * sizeof(int32_t));
    m->e_tick = rlab_malloc(cap * F * sizeof(int64_t));
    m->e_id = rlab_malloc(cap * F * sizeof(uint64_t));
    m->e_err = rlab_malloc(cap * F * sizeof(float));
    m->decay_pow = rlab_malloc(64 * sizeof(float));
    if (!m->planes || !m->dir || !m->store || !m->s_code || !m->s_tab || !m->s_tick || !m->s_err ||
        !m->s_mass || !m->s_n || !m->s_head || !m->e_tick || !m->e_id || !m->e_err ||
        !m->decay_pow) {
        reloop_mem_free(m);
        rlab_errf(err, RLAB_ENOMEM, "reloop memory: out of memory (%lld buckets)",
                  (long long)o->cap);
        return NULL;
    }
    rlab_rng rng;
    rlab_rng_seed(&rng, o->seed);
    for (size_t i = 0; i < (size_t)m->R * (size_t)m->B * (size_t)m->D; i++)
        m->planes[i] = rlab_rng_normal(&rng);
    double p = 1.0;
    for (int a = 0; a < 64; a++, p *= (double)o->decay)
        m->decay_pow[a] = (float)p;
    reloop_mem_clear(m);
    return m;
}

static float decay_of(const reloop_mem *m, int64_t age)
{
    if (age < 64)
        return m->decay_pow[age];
    return (float)pow((double)m->o.decay, (double)age);
}

/* The codes of unit key x in every table into codes[R]. planes is [D][R*B] (transposed), so
 * the inner loop runs over R*B independent accumulators and vectorises. */
static void codes_of(const reloop_mem *m, const float *x, int32_t *codes)
{
    const int D = m->D, RB = m->R * m->B;
    float proj[RELOOP_MAX_TABLES * RELOOP_MAX_BITS];
    memset(proj, 0, (size_t)RB * sizeof(float));
    for (int d = 0; d < D; d++) {
        const float *pl = m->planes + (size_t)d * (size_t)RB, xd = x[d];
        for (int j = 0; j < RB; j++)
            proj[j] += pl[j] * xd;
    }
    for (int r = 0; r < m->R; r++) {
        uint32_t c = 0;
        for (int j = 0; j < m->B; j++)
            c = (c << 1) | (proj[r * m->B + j] >= 0.0f);
        codes[r] = (int32_t)c;
    }
}

/* x / |x| into out; 0 for a zero (or non-finite) key. */
static int unit(const float *x, int D, float *out)
{
    double n2 = 0.0;
    for (int d = 0; d < D; d++)
        n2 += (double)x[d] * (double)x[d];
    if (!(n2 > 0.0) || !isfinite(n2))
        return 0;
    float inv = (float)(1.0 / sqrt(n2));
    for (int d = 0; d < D; d++)
        out[d] = x[d] * inv;
    return 1;
}

/* The slot of (r, code), creating (or recycling) one when absent. */
static int64_t slot_for(reloop_mem *m, int r, int32_t code)
{
    int32_t *dp = m->dir + ((size_t)r << m->B) + (size_t)code;
    if (*dp >= 0)
        return *dp;
    int64_t s = m->next;
    m->next = (m->next + 1) % m->cap;
    if (m->s_code[s] >= 0) /* recycle: unlink the old bucket */
        m->dir[((size_t)m->s_tab[s] << m->B) + (size_t)m->s_code[s]] = -1;
    else
        m->used++;
    m->s_code[s] = code;
    m->s_tab[s] = (int8_t)r;
    m->s_tick[s] = m->tick;
    m->s_err[s] = 0.0f;
    m->s_mass[s] = 0.0f;
    m->s_n[s] = 0;
    m->s_head[s] = 0;
    memset(m->store + (size_t)s * m->slot_fl, 0, m->slot_fl * sizeof(float));
    *dp = (int32_t)s;
    return s;
}

void reloop_mem_insert(reloop_mem *m, const float *key, float error)
{
    if (!(fabsf(error) >= m->o.min_err) || !isfinite(error))
        return;
    float xs[512];
    float *x = m->D <= 512 ? xs : rlab_malloc((size_t)m->D * sizeof(float));
    if (!x)
        return;
    if (!unit(key, m->D, x))
        goto out;
    uint64_t id = ++m->n_ins;
    int32_t codes[RELOOP_MAX_TABLES];
    codes_of(m, x, codes);
    for (int r = 0; r < m->R; r++) {
        int64_t s = slot_for(m, r, codes[r]);
        float *k = m->store + (size_t)s * m->slot_fl;
        if (m->F == 0) {
            float f = decay_of(m, m->tick - m->s_tick[s]);
            for (int d = 0; d < m->D; d++)
                k[d] = k[d] * f + x[d];
            m->s_err[s] = m->s_err[s] * f + error;
            m->s_mass[s] = m->s_mass[s] * f + 1.0f;
            m->s_tick[s] = m->tick;
        } else {
            int h = m->s_head[s];
            size_t e = (size_t)s * (size_t)m->F + (size_t)h;
            memcpy(k + (size_t)h * (size_t)m->D, x, (size_t)m->D * sizeof(float));
            m->e_err[e] = error;
            m->e_tick[e] = m->tick;
            m->e_id[e] = id;
            m->s_head[s] = (h + 1) % m->F;
            if (m->s_n[s] < m->F)
                m->s_n[s]++;
        }
    }
out:
    if (x != xs)
        rlab_free(x);
}

/* <a, b> over n floats with 8 partial sums (a fixed order: deterministic, and the compiler
 * can vectorise it, which a single running sum forbids without -ffast-math). */
static float dot8(const float *a, const float *b, int n)
{
    float acc[8] = {0};
    int d = 0;
    for (; d + 8 <= n; d += 8)
        for (int j = 0; j < 8; j++)
            acc[j] += a[d + j] * b[d + j];
    for (; d < n; d++)
        acc[0] += a[d] * b[d];
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

typedef struct cand {
    float sim, mass, err;
    uint64_t id;
} cand;

void reloop_mem_lookup(const reloop_mem *m, const float *key, double *e_hat, int *n_cand)
{
    *e_hat = 0.0;
    if (n_cand)
        *n_cand = 0;
    float xs[512];
    cand cs[RELOOP_MAX_K];
    int nc = 0, K = m->o.k;
    float *x = m->D <= 512 ? xs : rlab_malloc((size_t)m->D * sizeof(float));
    if (!x)
        return;
    if (!unit(key, m->D, x))
        goto out;
    int32_t codes[RELOOP_MAX_TABLES];
    codes_of(m, x, codes);
    for (int r = 0; r < m->R; r++) {
        int32_t s = m->dir[((size_t)r << m->B) + (size_t)codes[r]];
        if (s < 0)
            continue;
        const float *k = m->store + (size_t)s * m->slot_fl;
        int ne = m->F == 0 ? 1 : m->s_n[s];
        for (int j = 0; j < ne; j++) {
            cand c;
            const float *kj = k + (size_t)j * (size_t)m->D;
            float dot = dot8(kj, x, m->D), n2 = 1.0f; /* FIFO keys are unit vectors */
            if (m->F == 0) {
                n2 = dot8(kj, kj, m->D);
                if (!(n2 > 0.0f))
                    continue;
            }
            c.sim = dot / sqrtf(n2); /* x is a unit vector */
            if (m->F == 0) {
                c.err = m->s_err[s] / m->s_mass[s]; /* decay cancels in the mean */
                c.mass = m->s_mass[s] * decay_of(m, m->tick - m->s_tick[s]);
                c.id = 0;
            } else {
                size_t e = (size_t)s * (size_t)m->F + (size_t)j;
                c.err = m->e_err[e];
                c.mass = decay_of(m, m->tick - m->e_tick[e]);
                c.id = m->e_id[e];
                int dup = 0;
                for (int i = 0; i < nc && !dup; i++)
                    dup = cs[i].id == c.id;
                if (dup)
                    continue;
            }
            /* keep the K most similar, sorted descending (insertion) */
            if (nc == K && c.sim <= cs[K - 1].sim)
                continue;
            int i = nc < K ? nc++ : K - 1;
            while (i > 0 && cs[i - 1].sim < c.sim) {
                cs[i] = cs[i - 1];
                i--;
            }
            cs[i] = c;
        }
    }
    if (nc > 0) {
        /* w = mass * exp((sim - 1) / tau): a softmax over sim / tau scaled so that an exact match
         * of mass 1 weighs 1, which gives the pseudo-count `shrink` its unit */
        double wsum = 0.0, acc = 0.0, inv_tau = 1.0 / (double)m->o.tau;
        for (int i = 0; i < nc; i++) {
            double w = (double)cs[i].mass * exp(((double)cs[i].sim - 1.0) * inv_tau);
            wsum += w;
            acc += w * (double)cs[i].err;
        }
        double den = wsum + (double)m->o.shrink;
        *e_hat = den > 0.0 ? acc / den : 0.0;
        if (n_cand)
            *n_cand = nc;
    }
out:
    if (x != xs)
        rlab_free(x);
}

void reloop_mem_codes(const reloop_mem *m, const float *key, int32_t *codes)
{
    float xs[512];
    float *x = m->D <= 512 ? xs : rlab_malloc((size_t)m->D * sizeof(float));
    if (x && unit(key, m->D, x))
        codes_of(m, x, codes);
    else
        memset(codes, 0, (size_t)m->R * sizeof(int32_t));
    if (x != xs)
        rlab_free(x);
}

void reloop_mem_tick(reloop_mem *m) { m->tick++; }

void reloop_mem_get_stats(const reloop_mem *m, reloop_mem_stats *s)
{
    s->buckets = m->used;
    s->inserted = (int64_t)m->n_ins;
    int64_t ent = 0;
    for (int64_t i = 0; i < m->cap; i++)
        if (m->s_code[i] >= 0)
            ent += m->F ? m->s_n[i] : 1;
    s->entries = ent;
    size_t F = m->F ? (size_t)m->F : 1, cap = (size_t)m->cap;
    s->bytes =
        (int64_t)((size_t)m->R * (size_t)m->B * (size_t)m->D * sizeof(float) +
                  ((size_t)m->R << m->B) * sizeof(int32_t) + cap * m->slot_fl * sizeof(float) +
                  cap * (sizeof(int32_t) * 3 + 1 + sizeof(int64_t) + 2 * sizeof(float)) +
                  cap * F * (sizeof(int64_t) + sizeof(uint64_t) + sizeof(float)));
}
