// The AVX2 level (Haswell and later, Zen 1 to 3, AVX-512 CPUs without VNNI). Same layouts, same
// integer dot products and same float bounds as the VNNI level.
//
// Exactness. AVX2 has no byte dot product that cannot saturate: vpmaddubsw adds two unsigned by
// signed products in 16 bits, and (q + 128) q' reaches 2 * 255 * 127 > 32767. So the row code is
// turned back to signed, s = (q + 128) ^ 0x80 = q, and multiplied as |s| (unsigned, at most 128
// whatever the byte) by sign(q', s) (q' with the sign of s; in [-127, 127] because query codes are
// never -128): a 16-bit pair sum is at most 2 * 128 * 127 = 32512, exact, and vpmaddwd by ones
// widens pairs to 32 bits. The sum is the signed product q.q' itself, which the VNNI level reaches
// by subtracting the query's offset, so no offset is applied here. No 32-bit sum can overflow:
// |q.q'| <= 128 * 127 * 2^16 < 2^31 at the largest dimension (2^16, VectorIndex's limit).
#include "Kernels.h"

#if VK_X86
#include <immintrin.h>
#include <string.h>

#define VK_TARGET __attribute__((target("avx2,fma")))

/// Lanes of x from 0 to `left` (none when left <= 0), zero beyond; never reads past them.
VK_TARGET static inline __m256 load_first(const float *x, int left) {
    if (left >= 8) return _mm256_loadu_ps(x);
    if (left <= 0) return _mm256_setzero_ps();
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(left), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    return _mm256_maskload_ps(x, mask);
}

VK_TARGET static inline double sum_lanes(__m256d v) {
    __m128d h = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
}

/// A row coded 8 components at a time; the codes and scale equal the portable coder's (the same
/// float product rounded in the current mode, nearest even unless changed, and the same clamp).
VK_TARGET void vk_code_row_avx2(const float *x, int dimension, int padded, uint8_t *out, float *scale,
                                double *squaredError, double *squaredNorm) {
    const __m256 signMask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    __m256 maxv = _mm256_setzero_ps();
    for (int i = 0; i < dimension; i += 8)
        maxv = _mm256_max_ps(maxv, _mm256_and_ps(load_first(x + i, dimension - i), signMask));
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(maxv), _mm256_extractf128_ps(maxv, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    const float max = _mm_cvtss_f32(m);
    const float inverse = vk_inverse_step(max);
    const float a = inverse > 0 ? max / 127.0f : 0;
    const __m256 inv = _mm256_set1_ps(inverse);
    const __m256d step = _mm256_set1_pd((double)a);
    const __m256i top = _mm256_set1_epi32(127), bottom = _mm256_set1_epi32(-127), bias = _mm256_set1_epi32(128);
    // packs and packus interleave 128-bit halves; this puts the four dwords of each source back.
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    __m256d ee0 = _mm256_setzero_pd(), ee1 = ee0, nn0 = ee0, nn1 = ee0;
    for (int i = 0; i < padded; i += 32) {
        __m256i q[4];
        for (int k = 0; k < 4; k++) {
            const __m256 v = load_first(x + i + 8 * k, dimension - i - 8 * k);
            __m256i c = _mm256_cvtps_epi32(_mm256_mul_ps(v, inv));
            c = _mm256_max_epi32(_mm256_min_epi32(c, top), bottom);
            q[k] = _mm256_add_epi32(c, bias);
            const __m256d vlo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
            const __m256d vhi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
            const __m256d qlo = _mm256_cvtepi32_pd(_mm256_castsi256_si128(c));
            const __m256d qhi = _mm256_cvtepi32_pd(_mm256_extracti128_si256(c, 1));
            // a q is exact in float64 (24 + 8 bits); so is the difference up to one rounding.
            const __m256d elo = _mm256_fnmadd_pd(step, qlo, vlo), ehi = _mm256_fnmadd_pd(step, qhi, vhi);
            ee0 = _mm256_fmadd_pd(elo, elo, ee0);
            ee1 = _mm256_fmadd_pd(ehi, ehi, ee1);
            nn0 = _mm256_fmadd_pd(vlo, vlo, nn0);
            nn1 = _mm256_fmadd_pd(vhi, vhi, nn1);
        }
        const __m256i bytes = _mm256_packus_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
        _mm256_store_si256((__m256i *)(out + i), _mm256_permutevar8x32_epi32(bytes, order));
    }
    *scale = a;
    *squaredError = sum_lanes(_mm256_add_pd(ee0, ee1));
    *squaredNorm = sum_lanes(_mm256_add_pd(nn0, nn1));
}

/// 32 codes of a row by 32 of a query, added to the 8 sums in acc (see the top of the file).
VK_TARGET static inline __m256i dot_step(__m256i acc, __m256i codes, __m256i query) {
    const __m256i s = _mm256_xor_si256(codes, _mm256_set1_epi8((char)0x80));
    const __m256i pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(s), _mm256_sign_epi8(query, s));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}

// Prefetch distance, bytes. Twice the instructions per cache line of the VNNI level leave too few
// loads in flight for the hardware prefetchers alone: without it a scan of 1M x 384 codes ran at
// 14 GB/s on one core, with it 33 GB/s, as fast as the VNNI level (4 KB ahead already did that;
// 16 KB was best, 62 GB/s, when the codes partly sit in L3).
#define VK_AHEAD 16384

/// A row's 8 partial sums; `steps` (32 codes each) is even, padded being a multiple of 64.
VK_TARGET static inline __m256i dot_row(const uint8_t *x, int steps, const int8_t *query) {
    __m256i acc = _mm256_setzero_si256();
    for (int t = 0; t < steps; t += 2) {
        _mm_prefetch((const char *)(x + 32 * t + VK_AHEAD), _MM_HINT_T0);
        acc = dot_step(acc, _mm256_load_si256((const __m256i *)(x + 32 * t)),
                       _mm256_load_si256((const __m256i *)(query + 32 * t)));
        acc = dot_step(acc, _mm256_load_si256((const __m256i *)(x + 32 * t + 32)),
                       _mm256_load_si256((const __m256i *)(query + 32 * t + 32)));
    }
    return acc;
}

VK_TARGET static inline __m256i merge32(__m256i a, __m256i b) {
    return _mm256_add_epi32(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b));
}

VK_TARGET static inline __m256i merge64(__m256i a, __m256i b) {
    return _mm256_add_epi32(_mm256_unpacklo_epi64(a, b), _mm256_unpackhi_epi64(a, b));
}

VK_TARGET static inline __m256i merge128(__m256i a, __m256i b) {
    return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
}

/// Lane i = the sum of the lanes of v[i].
VK_TARGET static inline __m256i reduce8(const __m256i v[8]) {
    const __m256i a0 = merge32(v[0], v[1]), a1 = merge32(v[2], v[3]), a2 = merge32(v[4], v[5]), a3 = merge32(v[6], v[7]);
    return merge128(merge64(a0, a1), merge64(a2, a3));
}

/// One side of 8 (row, query) pairs, one lane per pair: the rows' values, or the queries'.
typedef struct {
    __m256 norm, scale, length, error;
} row_lanes;

typedef struct {
    __m256 norm, twoScale, reach, spread, shrink, stretch, absolute;
} query_lanes;

VK_TARGET static inline query_lanes broadcast_query(vk_query b) {
    return (query_lanes){_mm256_set1_ps(b.norm),         _mm256_set1_ps(b.twoScale),     _mm256_set1_ps(b.reach),
                         _mm256_set1_ps(b.spread),       _mm256_set1_ps(1 - b.relative), _mm256_set1_ps(1 + b.relative),
                         _mm256_set1_ps(b.absolute)};
}

/// The VNNI level's emit_bounds on 8 pairs, operation for operation (so the bits agree), from
/// signed dot products. Pair i is (row + i rowStep, lane + i laneStep).
VK_TARGET static inline size_t emit_bounds(__m256i dots, row_lanes x, const query_lanes *y, __m256 tau, unsigned live,
                                           uint32_t row, uint32_t rowStep, uint32_t lane, uint32_t laneStep,
                                           vk_candidate *out, size_t found) {
    __m256 d = _mm256_cvtepi32_ps(dots);
    __m256 twice = _mm256_mul_ps(x.scale, _mm256_mul_ps(y->twoScale, d));
    __m256 slack = _mm256_add_ps(_mm256_mul_ps(y->reach, _mm256_add_ps(x.length, x.error)), _mm256_mul_ps(y->spread, x.error));
    __m256 sum = _mm256_add_ps(x.norm, y->norm);
    __m256 lower = _mm256_sub_ps(_mm256_sub_ps(_mm256_sub_ps(_mm256_mul_ps(sum, y->shrink), twice), slack), y->absolute);
    unsigned hit = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(lower, tau, _CMP_LE_OQ)) & live;
    if (!hit) return found;
    __m256 upper = _mm256_add_ps(_mm256_add_ps(_mm256_sub_ps(_mm256_mul_ps(sum, y->stretch), twice), slack), y->absolute);
    float lv[8], uv[8];
    _mm256_storeu_ps(lv, lower);
    _mm256_storeu_ps(uv, upper);
    while (hit) {
        uint32_t i = (uint32_t)__builtin_ctz(hit);
        hit &= hit - 1;
        out[found++] = (vk_candidate){row + i * rowStep, lane + i * laneStep, lv[i], uv[i]};
    }
    return found;
}

/// Code dot products of up to 8 consecutive rows (lanes past `n` are 0), each row read start to
/// end before the next, as the VNNI level does for the prefetchers' sake.
VK_TARGET static inline __m256i dot8(const uint8_t *x, size_t n, int padded, int steps, const int8_t *query) {
    __m256i acc[8];
#pragma clang loop unroll(full)
    for (size_t i = 0; i < 8; i++) acc[i] = i < n ? dot_row(x + i * (size_t)padded, steps, query) : _mm256_setzero_si256();
    return reduce8(acc);
}

VK_TARGET size_t vk_scan_one_avx2(vk_rows rows, size_t count, int padded, const int8_t *query, vk_query b, float tau,
                                  vk_candidate *out) {
    const int steps = padded / 32;
    const query_lanes y = broadcast_query(b);
    const __m256 limit = _mm256_set1_ps(tau);
    size_t found = 0;
    for (size_t r0 = 0; r0 < count; r0 += 8) {
        const uint8_t *x = rows.codes + r0 * (size_t)padded;
        row_lanes side;
        __m256i dots;
        size_t n = 8;
        if (count - r0 >= 8) {
            dots = dot8(x, 8, padded, steps, query);
            side = (row_lanes){_mm256_loadu_ps(rows.norms + r0), _mm256_loadu_ps(rows.scales + r0),
                               _mm256_loadu_ps(rows.lengths + r0), _mm256_loadu_ps(rows.errors + r0)};
        } else {
            n = count - r0;
            dots = dot8(x, n, padded, steps, query);
            side = (row_lanes){load_first(rows.norms + r0, (int)n), load_first(rows.scales + r0, (int)n),
                               load_first(rows.lengths + r0, (int)n), load_first(rows.errors + r0, (int)n)};
        }
        found = emit_bounds(dots, side, &y, limit, (1u << n) - 1, (uint32_t)r0, 1, 0, 0, out, found);
    }
    return found;
}

// Rows per register tile: 2 rows x 32 lanes = 8 accumulators, plus 4 query registers, the row's
// codes and their magnitudes, in AVX2's 16 registers. 1 to 4 rows ran as fast (0.38-0.41 ms per
// query over 100k x 384 on one core): two multiplies per 32 products bound it, not the loads.
#define VK_TILE 2

/// 4 codes of one row (broadcast) by 4 codes of each of 32 queries, added to acc.
VK_TARGET static inline void group_step(__m256i acc[4], int32_t four, const __m256i q[4]) {
    const __m256i s = _mm256_xor_si256(_mm256_set1_epi32(four), _mm256_set1_epi8((char)0x80));
    const __m256i magnitude = _mm256_abs_epi8(s);
    const __m256i ones = _mm256_set1_epi16(1);
#pragma clang loop unroll(full)
    for (int j = 0; j < 4; j++)
        acc[j] = _mm256_add_epi32(acc[j], _mm256_madd_epi16(_mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(q[j], s)), ones));
}

VK_TARGET static inline size_t group_epilogue(const __m256i acc[4], uint32_t row, vk_rows rows, const query_lanes y[4],
                                              const __m256 tau[4], vk_candidate *out, size_t found) {
    const row_lanes x = {_mm256_set1_ps(rows.norms[row]), _mm256_set1_ps(rows.scales[row]), _mm256_set1_ps(rows.lengths[row]),
                         _mm256_set1_ps(rows.errors[row])};
    for (int h = 0; h < 4; h++) found = emit_bounds(acc[h], x, &y[h], tau[h], 0xFF, row, 0, (uint32_t)(h * 8), 1, out, found);
    return found;
}

VK_TARGET size_t vk_scan_group_avx2(vk_rows rows, size_t count, int padded, const int32_t *packed,
                                    const vk_query *bounds, const float *tau, vk_candidate *out) {
    const int steps = padded / 4;
    float lanes[4][32];
    for (int i = 0; i < 32; i++) {
        lanes[0][i] = bounds[i].norm;
        lanes[1][i] = bounds[i].twoScale;
        lanes[2][i] = bounds[i].reach;
        lanes[3][i] = bounds[i].spread;
    }
    query_lanes y[4];
    __m256 limit[4];
    for (int h = 0; h < 4; h++) {
        // relative and absolute are the same constants for every query.
        y[h] = broadcast_query(bounds[0]);
        y[h].norm = _mm256_loadu_ps(lanes[0] + 8 * h);
        y[h].twoScale = _mm256_loadu_ps(lanes[1] + 8 * h);
        y[h].reach = _mm256_loadu_ps(lanes[2] + 8 * h);
        y[h].spread = _mm256_loadu_ps(lanes[3] + 8 * h);
        limit[h] = _mm256_loadu_ps(tau + 8 * h);
    }
    const size_t stride = (size_t)padded;
    size_t found = 0;
    size_t r0 = 0;
    for (; r0 + VK_TILE <= count; r0 += VK_TILE) {
        __m256i acc[VK_TILE][4];
        for (int r = 0; r < VK_TILE; r++)
            for (int j = 0; j < 4; j++) acc[r][j] = _mm256_setzero_si256();
        const uint8_t *x = rows.codes + r0 * stride;
        for (int t = 0; t < steps; t++) {
            __m256i q[4];
            for (int j = 0; j < 4; j++) q[j] = _mm256_load_si256((const __m256i *)(packed + (size_t)t * 32 + 8 * j));
#pragma clang loop unroll(full)
            for (int r = 0; r < VK_TILE; r++) {
                int32_t four;
                memcpy(&four, x + r * stride + 4 * (size_t)t, sizeof four);
                group_step(acc[r], four, q);
            }
        }
        for (int r = 0; r < VK_TILE; r++) found = group_epilogue(acc[r], (uint32_t)(r0 + r), rows, y, limit, out, found);
    }
    for (; r0 < count; r0++) {
        __m256i acc[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
        const uint8_t *x = rows.codes + r0 * stride;
        for (int t = 0; t < steps; t++) {
            __m256i q[4];
            for (int j = 0; j < 4; j++) q[j] = _mm256_load_si256((const __m256i *)(packed + (size_t)t * 32 + 8 * j));
            int32_t four;
            memcpy(&four, x + 4 * (size_t)t, sizeof four);
            group_step(acc, four, q);
        }
        found = group_epilogue(acc, (uint32_t)r0, rows, y, limit, out, found);
    }
    return found;
}

VK_TARGET double vk_distance_avx2(const float *a, const float *b, int dimension) {
    __m256d sum0 = _mm256_setzero_pd(), sum1 = _mm256_setzero_pd();
    int i = 0;
    for (; i + 8 <= dimension; i += 8) {
        const __m256 d = _mm256_loadu_ps(a + i), e = _mm256_loadu_ps(b + i);
        const __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(d)),
                                         _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        const __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(d, 1)),
                                         _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
        sum0 = _mm256_fmadd_pd(d0, d0, sum0);
        sum1 = _mm256_fmadd_pd(d1, d1, sum1);
    }
    double sum = sum_lanes(_mm256_add_pd(sum0, sum1));
    for (; i < dimension; i++) {
        double d = (double)a[i] - (double)b[i];
        sum += d * d;
    }
    return sum;
}
#endif
