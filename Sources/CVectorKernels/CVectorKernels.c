#include "CVectorKernels.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define VK_X86 1
#define VK_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#else
#define VK_X86 0
#endif

bool vk_bf16_available(void) {
#if VK_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
#else
    return false;
#endif
}

static void finish_norm(double sum, float *norm, float *length) {
    *norm = (float)sum;
    // Rounded up so that slope * length never understates the bound.
    *length = nextafterf((float)sqrt(sum), INFINITY);
}

void vk_norm(const float *vector, int dimension, float *norm, float *length) {
    double sum = 0;
    for (int i = 0; i < dimension; i++) sum += (double)vector[i] * (double)vector[i];
    finish_norm(sum, norm, length);
}

#if VK_X86
VK_TARGET static void prepare_row_bf16(const float *row, int dimension, uint16_t *out, int padded, float *norm,
                                       float *length) {
    __m512d sum0 = _mm512_setzero_pd(), sum1 = _mm512_setzero_pd();
    int i = 0;
    for (; i < padded; i += 16) {
        int left = dimension - i;
        __mmask16 mask = left >= 16 ? (__mmask16)0xFFFF : left <= 0 ? (__mmask16)0 : (__mmask16)((1u << left) - 1);
        __m512 v = _mm512_maskz_loadu_ps(mask, row + i);
        __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
        __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
        sum0 = _mm512_fmadd_pd(lo, lo, sum0);
        sum1 = _mm512_fmadd_pd(hi, hi, sum1);
        _mm256_store_si256((__m256i *)(out + i), (__m256i)_mm512_cvtneps_pbh(v));
    }
    finish_norm(_mm512_reduce_add_pd(_mm512_add_pd(sum0, sum1)), norm, length);
}
#endif

void vk_prepare_rows(const float *rows, size_t count, int dimension, uint16_t *out, int padded, float *norms,
                     float *lengths) {
    for (size_t r = 0; r < count; r++) {
        const float *row = rows + r * (size_t)dimension;
#if VK_X86
        if (out) {
            prepare_row_bf16(row, dimension, out + r * (size_t)padded, padded, norms + r, lengths + r);
            continue;
        }
#endif
        vk_norm(row, dimension, norms + r, lengths + r);
    }
}

#if VK_X86
VK_TARGET static inline float lower_bound(float s, float norm, float length, vk_bounds b) {
    return (b.queryNorm + norm) * (1 - b.relative) - 2 * s - b.slope * length - b.absolute;
}

VK_TARGET static inline float upper_bound(float s, float norm, float length, vk_bounds b) {
    return (b.queryNorm + norm) * (1 + b.relative) - 2 * s + b.slope * length + b.absolute;
}

VK_TARGET static size_t scan_one_avx(const uint16_t *rows, size_t count, int padded, const uint16_t *query,
                                     const float *norms, const float *lengths, vk_bounds b, float tau,
                                     vk_candidate *out) {
    const int steps = padded / 32;
    size_t found = 0;
    size_t r = 0;
    for (; r + 4 <= count; r += 4) {
        const uint16_t *x = rows + r * (size_t)padded;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int t = 0; t < steps; t++) {
            __m512bh q = (__m512bh)_mm512_load_si512(query + t * 32);
            a0 = _mm512_dpbf16_ps(a0, (__m512bh)_mm512_load_si512(x + t * 32), q);
            a1 = _mm512_dpbf16_ps(a1, (__m512bh)_mm512_load_si512(x + padded + t * 32), q);
            a2 = _mm512_dpbf16_ps(a2, (__m512bh)_mm512_load_si512(x + 2 * padded + t * 32), q);
            a3 = _mm512_dpbf16_ps(a3, (__m512bh)_mm512_load_si512(x + 3 * padded + t * 32), q);
        }
        float s[4] = {_mm512_reduce_add_ps(a0), _mm512_reduce_add_ps(a1), _mm512_reduce_add_ps(a2),
                      _mm512_reduce_add_ps(a3)};
        for (int i = 0; i < 4; i++) {
            size_t row = r + i;
            float lower = lower_bound(s[i], norms[row], lengths[row], b);
            if (lower <= tau) {
                out[found++] = (vk_candidate){(uint32_t)row, 0, lower, upper_bound(s[i], norms[row], lengths[row], b)};
            }
        }
    }
    for (; r < count; r++) {
        const uint16_t *x = rows + r * (size_t)padded;
        __m512 a = _mm512_setzero_ps();
        for (int t = 0; t < steps; t++) {
            a = _mm512_dpbf16_ps(a, (__m512bh)_mm512_load_si512(x + t * 32), (__m512bh)_mm512_load_si512(query + t * 32));
        }
        float s = _mm512_reduce_add_ps(a);
        float lower = lower_bound(s, norms[r], lengths[r], b);
        if (lower <= tau) out[found++] = (vk_candidate){(uint32_t)r, 0, lower, upper_bound(s, norms[r], lengths[r], b)};
    }
    return found;
}
#endif

size_t vk_scan_one(const uint16_t *rows, size_t count, int padded, const uint16_t *query, const float *norms,
                   const float *lengths, vk_bounds bounds, float tau, vk_candidate *out) {
#if VK_X86
    return scan_one_avx(rows, count, padded, query, norms, lengths, bounds, tau, out);
#else
    (void)rows; (void)count; (void)padded; (void)query; (void)norms; (void)lengths; (void)bounds; (void)tau; (void)out;
    return 0;
#endif
}

void vk_pack_group(const uint16_t *queries, int count, int padded, uint32_t *packed) {
    const int steps = padded / 2;
    memset(packed, 0, (size_t)steps * 32 * sizeof(uint32_t));
    for (int lane = 0; lane < count && lane < 32; lane++) {
        const uint16_t *q = queries + (size_t)lane * padded;
        for (int t = 0; t < steps; t++) {
            uint32_t pair;
            memcpy(&pair, q + 2 * t, sizeof pair);
            packed[(size_t)t * 32 + lane] = pair;
        }
    }
}

#if VK_X86
// Rows per register tile: 12 rows x 32 lanes = 24 accumulators, plus 2 query registers.
#define VK_TILE 12

typedef struct {
    __m512 queryNorm[2], slope[2], tau[2];
    float relative, absolute;
    const vk_bounds *bounds;
} group_state;

VK_TARGET static inline size_t group_epilogue(__m512 s0, __m512 s1, uint32_t row, float norm, float length,
                                              const group_state *g, vk_candidate *out, size_t found) {
    __m512 s[2] = {s0, s1};
    for (int h = 0; h < 2; h++) {
        __m512 sum = _mm512_add_ps(g->queryNorm[h], _mm512_set1_ps(norm));
        __m512 lower = _mm512_sub_ps(_mm512_mul_ps(sum, _mm512_set1_ps(1 - g->relative)), _mm512_add_ps(s[h], s[h]));
        lower = _mm512_sub_ps(lower, _mm512_mul_ps(g->slope[h], _mm512_set1_ps(length)));
        lower = _mm512_sub_ps(lower, _mm512_set1_ps(g->absolute));
        __mmask16 mask = _mm512_cmp_ps_mask(lower, g->tau[h], _CMP_LE_OQ);
        if (mask) {
            float sv[16], lv[16];
            _mm512_storeu_ps(sv, s[h]);
            _mm512_storeu_ps(lv, lower);
            while (mask) {
                int i = __builtin_ctz(mask);
                mask &= (__mmask16)(mask - 1);
                int lane = h * 16 + i;
                out[found++] = (vk_candidate){row, (uint32_t)lane, lv[i], upper_bound(sv[i], norm, length, g->bounds[lane])};
            }
        }
    }
    return found;
}

VK_TARGET static size_t scan_group_avx(const uint16_t *rows, size_t count, int padded, const uint32_t *packed,
                                       const vk_bounds *bounds, const float *tau, const float *norms,
                                       const float *lengths, vk_candidate *out) {
    const int steps = padded / 2;
    group_state g;
    float qn[32], sl[32];
    for (int i = 0; i < 32; i++) {
        qn[i] = bounds[i].queryNorm;
        sl[i] = bounds[i].slope;
    }
    for (int h = 0; h < 2; h++) {
        g.queryNorm[h] = _mm512_loadu_ps(qn + 16 * h);
        g.slope[h] = _mm512_loadu_ps(sl + 16 * h);
        g.tau[h] = _mm512_loadu_ps(tau + 16 * h);
    }
    g.relative = bounds[0].relative;
    g.absolute = bounds[0].absolute;
    g.bounds = bounds;
    const uint32_t *x32 = (const uint32_t *)rows;
    const size_t stride = (size_t)padded / 2;
    size_t found = 0;
    size_t r0 = 0;
    for (; r0 + VK_TILE <= count; r0 += VK_TILE) {
        __m512 acc[VK_TILE][2];
        for (int r = 0; r < VK_TILE; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
        const uint32_t *x = x32 + r0 * stride;
        for (int t = 0; t < steps; t++) {
            __m512bh q0 = (__m512bh)_mm512_load_si512(packed + (size_t)t * 32);
            __m512bh q1 = (__m512bh)_mm512_load_si512(packed + (size_t)t * 32 + 16);
#pragma clang loop unroll(full)
            for (int r = 0; r < VK_TILE; r++) {
                __m512bh pair = (__m512bh)_mm512_set1_epi32((int)x[r * stride + t]);
                acc[r][0] = _mm512_dpbf16_ps(acc[r][0], q0, pair);
                acc[r][1] = _mm512_dpbf16_ps(acc[r][1], q1, pair);
            }
        }
        for (int r = 0; r < VK_TILE; r++) {
            size_t row = r0 + r;
            found = group_epilogue(acc[r][0], acc[r][1], (uint32_t)row, norms[row], lengths[row], &g, out, found);
        }
    }
    for (; r0 < count; r0++) {
        __m512 a0 = _mm512_setzero_ps(), a1 = a0;
        const uint32_t *x = x32 + r0 * stride;
        for (int t = 0; t < steps; t++) {
            __m512bh pair = (__m512bh)_mm512_set1_epi32((int)x[t]);
            a0 = _mm512_dpbf16_ps(a0, (__m512bh)_mm512_load_si512(packed + (size_t)t * 32), pair);
            a1 = _mm512_dpbf16_ps(a1, (__m512bh)_mm512_load_si512(packed + (size_t)t * 32 + 16), pair);
        }
        found = group_epilogue(a0, a1, (uint32_t)r0, norms[r0], lengths[r0], &g, out, found);
    }
    return found;
}
#endif

size_t vk_scan_group(const uint16_t *rows, size_t count, int padded, const uint32_t *packed, const vk_bounds *bounds,
                     const float *tau, const float *norms, const float *lengths, vk_candidate *out) {
#if VK_X86
    return scan_group_avx(rows, count, padded, packed, bounds, tau, norms, lengths, out);
#else
    (void)rows; (void)count; (void)padded; (void)packed; (void)bounds; (void)tau; (void)norms; (void)lengths; (void)out;
    return 0;
#endif
}

#if VK_X86
__attribute__((target("avx512f"))) static double distance_avx(const float *a, const float *b, int dimension) {
    __m512d sum0 = _mm512_setzero_pd(), sum1 = _mm512_setzero_pd();
    int i = 0;
    for (; i + 16 <= dimension; i += 16) {
        __m512 d = _mm512_loadu_ps(a + i);
        __m512 e = _mm512_loadu_ps(b + i);
        __m512d d0 = _mm512_sub_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(d)), _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
        __m512d d1 = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(d), 1))),
                                   _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
        sum0 = _mm512_fmadd_pd(d0, d0, sum0);
        sum1 = _mm512_fmadd_pd(d1, d1, sum1);
    }
    double sum = _mm512_reduce_add_pd(_mm512_add_pd(sum0, sum1));
    for (; i < dimension; i++) {
        double d = (double)a[i] - (double)b[i];
        sum += d * d;
    }
    return sum;
}
#endif

double vk_distance_f64(const float *a, const float *b, int dimension) {
#if VK_X86
    if (__builtin_cpu_supports("avx512f")) return distance_avx(a, b, dimension);
#endif
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int i = 0;
    for (; i + 4 <= dimension; i += 4) {
        double d0 = (double)a[i] - b[i], d1 = (double)a[i + 1] - b[i + 1];
        double d2 = (double)a[i + 2] - b[i + 2], d3 = (double)a[i + 3] - b[i + 3];
        s0 += d0 * d0; s1 += d1 * d1; s2 += d2 * d2; s3 += d3 * d3;
    }
    for (; i < dimension; i++) {
        double d = (double)a[i] - b[i];
        s0 += d * d;
    }
    return (s0 + s1) + (s2 + s3);
}
