/*
 * core/tensor/exp512_internal (not installed): e^t on 16 lanes (AVX-512F), shared by the
 * attention's softmax rows and the fused cross-entropy: rlab_k_expf's range reduction
 * (k = round(t log2 e), r = t - k ln 2 in two parts) and degree-7 Taylor polynomial, Horner by
 * fused multiply-adds, 2^k by scalef. The caller clamps t to about [-87.3, 88.4] first (each
 * its own way: whether a NaN passes, whether t < -87.3 gives exactly 0) and includes
 * <immintrin.h>. Always inlined, so each caller's target("avx512f") function keeps it in
 * registers.
 */
#ifndef RLAB_TENSOR_EXP512_INTERNAL_H
#define RLAB_TENSOR_EXP512_INTERNAL_H

__attribute__((target("avx512f"), always_inline)) static inline __m512 rlab_exp512(__m512 t)
{
    const __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(t, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 r = _mm512_fmadd_ps(k, _mm512_set1_ps(2.12194440e-4f),
                                     _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), t));
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, k);
}

#endif
