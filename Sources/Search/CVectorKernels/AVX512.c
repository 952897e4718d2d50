// The AVX512-VNNI level (Ice Lake, Sapphire Rapids, Zen 4 and later).
#include "Kernels.h"

#if VK_X86
#include <immintrin.h>
#include <string.h>

#define VK_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))

/// A row coded 16 components at a time (the bulk of a snapshot's cold open).
VK_TARGET void vk_code_row_avx512(const float *x, int dimension, int padded, uint8_t *out, float *scale,
                                  double *squaredError, double *squaredNorm) {
    const __m512 signMask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FFFFFFF));
    __m512 maxv = _mm512_setzero_ps();
    for (int i = 0; i < dimension; i += 16) {
        int left = dimension - i;
        __mmask16 mask = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        maxv = _mm512_max_ps(maxv, _mm512_and_ps(_mm512_maskz_loadu_ps(mask, x + i), signMask));
    }
    float max = _mm512_reduce_max_ps(maxv);
    float inverse = vk_inverse_step(max);
    float a = inverse > 0 ? max / 127.0f : 0;
    const __m512 inv = _mm512_set1_ps(inverse);
    const __m512d step = _mm512_set1_pd((double)a);
    const __m512i top = _mm512_set1_epi32(127), bottom = _mm512_set1_epi32(-127), bias = _mm512_set1_epi32(128);
    __m512d ee0 = _mm512_setzero_pd(), ee1 = ee0, nn0 = ee0, nn1 = ee0;
    for (int i = 0; i < padded; i += 16) {
        int left = dimension - i;
        __mmask16 mask = left >= 16 ? (__mmask16)0xFFFF : left <= 0 ? (__mmask16)0 : (__mmask16)((1u << left) - 1);
        __m512 v = _mm512_maskz_loadu_ps(mask, x + i);
        __m512i q = _mm512_cvt_roundps_epi32(_mm512_mul_ps(v, inv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        q = _mm512_max_epi32(_mm512_min_epi32(q, top), bottom);
        _mm_store_si128((__m128i *)(out + i), _mm512_cvtepi32_epi8(_mm512_add_epi32(q, bias)));
        __m512d vlo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
        __m512d vhi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
        __m512d qlo = _mm512_cvtepi32_pd(_mm512_castsi512_si256(q));
        __m512d qhi = _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(q, 1));
        // a q is exact in float64 (24 + 8 bits); so is the difference up to one rounding.
        __m512d elo = _mm512_fnmadd_pd(step, qlo, vlo), ehi = _mm512_fnmadd_pd(step, qhi, vhi);
        ee0 = _mm512_fmadd_pd(elo, elo, ee0);
        ee1 = _mm512_fmadd_pd(ehi, ehi, ee1);
        nn0 = _mm512_fmadd_pd(vlo, vlo, nn0);
        nn1 = _mm512_fmadd_pd(vhi, vhi, nn1);
    }
    *scale = a;
    *squaredError = _mm512_reduce_add_pd(_mm512_add_pd(ee0, ee1));
    *squaredNorm = _mm512_reduce_add_pd(_mm512_add_pd(nn0, nn1));
}

VK_TARGET static inline __m512i merge32(__m512i a, __m512i b) {
    return _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
}

VK_TARGET static inline __m512i merge64(__m512i a, __m512i b) {
    return _mm512_add_epi32(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b));
}

VK_TARGET static inline __m512i merge128(__m512i a, __m512i b) {
    return _mm512_add_epi32(_mm512_shuffle_i32x4(a, b, 0x88), _mm512_shuffle_i32x4(a, b, 0xDD));
}

/// Lane i = the sum of the lanes of v[i].
VK_TARGET static inline __m512i reduce16(const __m512i v[16]) {
    __m512i a[8], b[4], c[2];
    for (int i = 0; i < 8; i++) a[i] = merge32(v[2 * i], v[2 * i + 1]);
    for (int i = 0; i < 4; i++) b[i] = merge64(a[2 * i], a[2 * i + 1]);
    for (int i = 0; i < 2; i++) c[i] = merge128(b[2 * i], b[2 * i + 1]);
    return merge128(c[0], c[1]);
}

/// One side of 16 (row, query) pairs, one lane per pair: the rows' values, or the queries'.
typedef struct {
    __m512 norm, scale, length, error;
} row_lanes;

typedef struct {
    __m512 norm, twoScale, reach, spread, shrink, stretch, absolute;
    __m512i offset;
} query_lanes;

/// A query's constants in every lane.
VK_TARGET static inline query_lanes broadcast_query(vk_query b) {
    return (query_lanes){_mm512_set1_ps(b.norm),         _mm512_set1_ps(b.twoScale),     _mm512_set1_ps(b.reach),
                         _mm512_set1_ps(b.spread),       _mm512_set1_ps(1 - b.relative), _mm512_set1_ps(1 + b.relative),
                         _mm512_set1_ps(b.absolute),     _mm512_set1_epi32(b.offset)};
}

/// The bounds of 16 (row, query) pairs from their code dot products, in the one formula both
/// kernels use (see vk_query); appends the live pairs whose lower bound is <= tau. Pair i is
/// (row + i rowStep, lane + i laneStep).
VK_TARGET static inline size_t emit_bounds(__m512i dots, row_lanes x, const query_lanes *y, __m512 tau, __mmask16 live,
                                           uint32_t row, uint32_t rowStep, uint32_t lane, uint32_t laneStep,
                                           vk_candidate *out, size_t found) {
    __m512 d = _mm512_cvtepi32_ps(_mm512_sub_epi32(dots, y->offset));
    __m512 twice = _mm512_mul_ps(x.scale, _mm512_mul_ps(y->twoScale, d));
    __m512 slack = _mm512_add_ps(_mm512_mul_ps(y->reach, _mm512_add_ps(x.length, x.error)), _mm512_mul_ps(y->spread, x.error));
    __m512 sum = _mm512_add_ps(x.norm, y->norm);
    __m512 lower = _mm512_sub_ps(_mm512_sub_ps(_mm512_sub_ps(_mm512_mul_ps(sum, y->shrink), twice), slack), y->absolute);
    __mmask16 hit = _mm512_mask_cmp_ps_mask(live, lower, tau, _CMP_LE_OQ);
    if (!hit) return found;
    __m512 upper = _mm512_add_ps(_mm512_add_ps(_mm512_sub_ps(_mm512_mul_ps(sum, y->stretch), twice), slack), y->absolute);
    float lv[16], uv[16];
    _mm512_storeu_ps(lv, lower);
    _mm512_storeu_ps(uv, upper);
    while (hit) {
        uint32_t i = (uint32_t)__builtin_ctz(hit);
        hit &= (__mmask16)(hit - 1);
        out[found++] = (vk_candidate){row + i * rowStep, lane + i * laneStep, lv[i], uv[i]};
    }
    return found;
}

/// Code dot products of 16 consecutive rows. Each row is read start to end before the next:
/// strictly sequential reads keep the hardware prefetchers ahead (three times faster than
/// interleaving the rows' cache lines).
VK_TARGET static inline __m512i dot16(const uint8_t *x, int padded, int steps, const int8_t *query) {
    __m512i acc[16];
#pragma clang loop unroll(full)
    for (int i = 0; i < 16; i++) {
        __m512i a = _mm512_setzero_si512();
        for (int t = 0; t < steps; t++)
            a = _mm512_dpbusd_epi32(a, _mm512_load_si512(x + (size_t)i * padded + 64 * t),
                                    _mm512_load_si512(query + 64 * t));
        acc[i] = a;
    }
    return reduce16(acc);
}

VK_TARGET size_t vk_scan_one_avx512(vk_rows rows, size_t count, int padded, const int8_t *query, vk_query b,
                                    float tau, vk_candidate *out) {
    const int steps = padded / 64;
    const query_lanes y = broadcast_query(b);
    const __m512 limit = _mm512_set1_ps(tau);
    size_t found = 0;
    for (size_t r0 = 0; r0 < count; r0 += 16) {
        const size_t n = count - r0 < 16 ? count - r0 : 16;
        const __mmask16 live = (__mmask16)(n == 16 ? 0xFFFFu : (1u << n) - 1);
        const uint8_t *x = rows.codes + r0 * (size_t)padded;
        __m512i dots;
        if (n == 16) {
            dots = dot16(x, padded, steps, query);
        } else {
            int32_t partial[16] = {0};
            for (size_t i = 0; i < n; i++) {
                __m512i a = _mm512_setzero_si512();
                for (int t = 0; t < steps; t++)
                    a = _mm512_dpbusd_epi32(a, _mm512_load_si512(x + i * padded + 64 * t), _mm512_load_si512(query + 64 * t));
                partial[i] = _mm512_reduce_add_epi32(a);
            }
            dots = _mm512_loadu_si512(partial);
        }
        row_lanes side = {_mm512_maskz_loadu_ps(live, rows.norms + r0), _mm512_maskz_loadu_ps(live, rows.scales + r0),
                          _mm512_maskz_loadu_ps(live, rows.lengths + r0), _mm512_maskz_loadu_ps(live, rows.errors + r0)};
        found = emit_bounds(dots, side, &y, limit, live, (uint32_t)r0, 1, 0, 0, out, found);
    }
    return found;
}

// Rows per register tile: 12 rows x 32 lanes = 24 accumulators, plus 2 query registers.
#define VK_TILE 12

VK_TARGET static inline size_t group_epilogue(const __m512i acc[2], uint32_t row, vk_rows rows, const query_lanes y[2],
                                              const __m512 tau[2], vk_candidate *out, size_t found) {
    const row_lanes x = {_mm512_set1_ps(rows.norms[row]), _mm512_set1_ps(rows.scales[row]), _mm512_set1_ps(rows.lengths[row]),
                         _mm512_set1_ps(rows.errors[row])};
    for (int h = 0; h < 2; h++) found = emit_bounds(acc[h], x, &y[h], tau[h], 0xFFFF, row, 0, (uint32_t)(h * 16), 1, out, found);
    return found;
}

VK_TARGET size_t vk_scan_group_avx512(vk_rows rows, size_t count, int padded, const int32_t *packed,
                                      const vk_query *bounds, const float *tau, vk_candidate *out) {
    const int steps = padded / 4;
    float lanes[5][32];
    int32_t offsets[32];
    for (int i = 0; i < 32; i++) {
        lanes[0][i] = bounds[i].norm;
        lanes[1][i] = bounds[i].twoScale;
        lanes[2][i] = bounds[i].reach;
        lanes[3][i] = bounds[i].spread;
        lanes[4][i] = tau[i];
        offsets[i] = bounds[i].offset;
    }
    query_lanes y[2];
    __m512 limit[2];
    for (int h = 0; h < 2; h++) {
        // relative and absolute are the same constants for every query.
        y[h] = broadcast_query(bounds[0]);
        y[h].norm = _mm512_loadu_ps(lanes[0] + 16 * h);
        y[h].twoScale = _mm512_loadu_ps(lanes[1] + 16 * h);
        y[h].reach = _mm512_loadu_ps(lanes[2] + 16 * h);
        y[h].spread = _mm512_loadu_ps(lanes[3] + 16 * h);
        y[h].offset = _mm512_loadu_si512(offsets + 16 * h);
        limit[h] = _mm512_loadu_ps(lanes[4] + 16 * h);
    }
    const size_t stride = (size_t)padded;
    size_t found = 0;
    size_t r0 = 0;
    for (; r0 + VK_TILE <= count; r0 += VK_TILE) {
        __m512i acc[VK_TILE][2];
        for (int r = 0; r < VK_TILE; r++) acc[r][0] = acc[r][1] = _mm512_setzero_si512();
        const uint8_t *x = rows.codes + r0 * stride;
        for (int t = 0; t < steps; t++) {
            __m512i q0 = _mm512_load_si512(packed + (size_t)t * 32);
            __m512i q1 = _mm512_load_si512(packed + (size_t)t * 32 + 16);
#pragma clang loop unroll(full)
            for (int r = 0; r < VK_TILE; r++) {
                int32_t four;
                memcpy(&four, x + r * stride + 4 * (size_t)t, sizeof four);
                __m512i codes = _mm512_set1_epi32(four);
                acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], codes, q0);
                acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], codes, q1);
            }
        }
        for (int r = 0; r < VK_TILE; r++) found = group_epilogue(acc[r], (uint32_t)(r0 + r), rows, y, limit, out, found);
    }
    for (; r0 < count; r0++) {
        __m512i acc[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
        const uint8_t *x = rows.codes + r0 * stride;
        for (int t = 0; t < steps; t++) {
            int32_t four;
            memcpy(&four, x + 4 * (size_t)t, sizeof four);
            __m512i codes = _mm512_set1_epi32(four);
            acc[0] = _mm512_dpbusd_epi32(acc[0], codes, _mm512_load_si512(packed + (size_t)t * 32));
            acc[1] = _mm512_dpbusd_epi32(acc[1], codes, _mm512_load_si512(packed + (size_t)t * 32 + 16));
        }
        found = group_epilogue(acc, (uint32_t)r0, rows, y, limit, out, found);
    }
    return found;
}

__attribute__((target("avx512f"))) double vk_distance_avx512(const float *a, const float *b, int dimension) {
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
