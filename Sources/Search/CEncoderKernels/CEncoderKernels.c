#include "CEncoderKernels.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define EK_X86 1
#define EK_TARGET __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl")))
#else
#define EK_X86 0
#endif

static int portable_only = 0;

void ek_use_portable_kernels(int portable) {
    portable_only = portable == 3 ? 0 : portable;
    ek_disable_amx(portable != 0);
}

static bool avx512(void) {
    if (portable_only != 0) return false;
#if EK_X86
    // Benign race: every thread computes the same answer.
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                 __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    }
    return cached;
#else
    return false;
#endif
}

/// AVX2 with FMA (most x86 servers without AVX-512, such as AMD's before Zen 4).
static bool avx2(void) {
    if (portable_only == 1) return false;
#if EK_X86
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return cached;
#else
    return false;
#endif
}

const char *ek_best_openblas_core(void) {
#if EK_X86
    if (avx512()) return "SkylakeX";
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
    return 0;
}

// exp: Cephes' expf (x = n ln2 + r, a degree-6 polynomial for exp(r)), clamped to float's range.
#define EK_EXP_LOW -87.33654f
#define EK_EXP_HIGH 88.3762626647949f
#define EK_LOG2E 1.44269504088896341f
#define EK_LN2_HIGH 0.693359375f
#define EK_LN2_LOW -2.12194440e-4f
#define EK_EXP_P0 1.9875691500e-4f
#define EK_EXP_P1 1.3981999507e-3f
#define EK_EXP_P2 8.3334519073e-3f
#define EK_EXP_P3 4.1665795894e-2f
#define EK_EXP_P4 1.6666665459e-1f
#define EK_EXP_P5 5.0000001201e-1f
// erf: Abramowitz and Stegun 7.1.26, 1.5e-7 absolute.
#define EK_ERF_P 0.3275911f
#define EK_ERF_A1 0.254829592f
#define EK_ERF_A2 -0.284496736f
#define EK_ERF_A3 1.421413741f
#define EK_ERF_A4 -1.453152027f
#define EK_ERF_A5 1.061405429f

// MARK: Portable

static void gelu_scalar(float *x, long count) {
    for (long i = 0; i < count; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

static void softmax_scalar(float *x, int rows, int columns) {
    for (int r = 0; r < rows; r++) {
        float *row = x + (long)r * columns;
        float largest = -INFINITY;
        for (int c = 0; c < columns; c++) largest = fmaxf(largest, row[c]);
        float sum = 0;
        for (int c = 0; c < columns; c++) {
            row[c] = expf(row[c] - largest);
            sum += row[c];
        }
        float inverse = 1.0f / sum;
        for (int c = 0; c < columns; c++) row[c] *= inverse;
    }
}

static void layernorm_scalar(float *x, const float *residual, int rows, int columns, const float *gamma, const float *beta,
                             float epsilon) {
    for (int r = 0; r < rows; r++) {
        float *row = x + (long)r * columns;
        if (residual) {
            const float *add = residual + (long)r * columns;
            for (int c = 0; c < columns; c++) row[c] += add[c];
        }
        float sum = 0;
        for (int c = 0; c < columns; c++) sum += row[c];
        float mean = sum / columns;
        float squares = 0;
        for (int c = 0; c < columns; c++) squares += (row[c] - mean) * (row[c] - mean);
        float scale = 1.0f / sqrtf(squares / columns + epsilon);
        for (int c = 0; c < columns; c++) row[c] = (row[c] - mean) * scale * gamma[c] + beta[c];
    }
}

// MARK: AVX-512

#if EK_X86
/// exp(x) to about 1 ulp: x = n ln2 + r, a degree-6 polynomial for exp(r) (Cephes' expf), then
/// scaled by 2^n.
EK_TARGET static inline __m512 exp512(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(EK_EXP_LOW)), _mm512_set1_ps(EK_EXP_HIGH));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(EK_LOG2E)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(EK_LN2_HIGH), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(EK_LN2_LOW), r);
    __m512 p = _mm512_set1_ps(EK_EXP_P0);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EK_EXP_P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EK_EXP_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EK_EXP_P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EK_EXP_P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EK_EXP_P5));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

/// erf(x) to 1.5e-7 absolute (Abramowitz and Stegun 7.1.26).
EK_TARGET static inline __m512 erf512(__m512 x) {
    __m512 ax = _mm512_abs_ps(x);
    __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_fmadd_ps(ax, _mm512_set1_ps(EK_ERF_P), _mm512_set1_ps(1.0f)));
    __m512 p = _mm512_set1_ps(EK_ERF_A5);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(EK_ERF_A4));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(EK_ERF_A3));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(EK_ERF_A2));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(EK_ERF_A1));
    p = _mm512_mul_ps(p, t);
    __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(ax, ax)));
    __m512 y = _mm512_fnmadd_ps(p, e, _mm512_set1_ps(1.0f));
    // The sign of x.
    __m512i sign = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000));
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(y), sign));
}

EK_TARGET static __mmask16 tail_mask(long left) { return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1); }

EK_TARGET static void gelu512(float *x, long count) {
    for (long i = 0; i < count; i += 16) {
        __mmask16 m = tail_mask(count - i);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        __m512 e = erf512(_mm512_mul_ps(v, _mm512_set1_ps(0.70710678118654752f)));
        __m512 g = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), v), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
        _mm512_mask_storeu_ps(x + i, m, g);
    }
}

EK_TARGET static void softmax512(float *x, int rows, int columns) {
    for (int r = 0; r < rows; r++) {
        float *row = x + (long)r * columns;
        __m512 largest = _mm512_set1_ps(-INFINITY);
        for (int c = 0; c < columns; c += 16) {
            __mmask16 m = tail_mask(columns - c);
            largest = _mm512_mask_max_ps(largest, m, largest, _mm512_maskz_loadu_ps(m, row + c));
        }
        __m512 top = _mm512_set1_ps(_mm512_reduce_max_ps(largest));
        __m512 sum = _mm512_setzero_ps();
        for (int c = 0; c < columns; c += 16) {
            __mmask16 m = tail_mask(columns - c);
            __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, row + c), top));
            e = _mm512_maskz_mov_ps(m, e);
            sum = _mm512_add_ps(sum, e);
            _mm512_mask_storeu_ps(row + c, m, e);
        }
        __m512 inverse = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
        for (int c = 0; c < columns; c += 16) {
            __mmask16 m = tail_mask(columns - c);
            _mm512_mask_storeu_ps(row + c, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, row + c), inverse));
        }
    }
}

EK_TARGET static void layernorm512(float *x, const float *residual, int rows, int columns, const float *gamma,
                                   const float *beta, float epsilon) {
    for (int r = 0; r < rows; r++) {
        float *row = x + (long)r * columns;
        __m512 sum = _mm512_setzero_ps();
        for (int c = 0; c < columns; c += 16) {
            __mmask16 m = tail_mask(columns - c);
            __m512 v = _mm512_maskz_loadu_ps(m, row + c);
            if (residual) {
                v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, residual + (long)r * columns + c));
                _mm512_mask_storeu_ps(row + c, m, v);
            }
            sum = _mm512_add_ps(sum, v);
        }
        float mean = _mm512_reduce_add_ps(sum) / columns;
        __m512 centre = _mm512_set1_ps(mean);
        __m512 squares = _mm512_setzero_ps();
        for (int c = 0; c < columns; c += 16) {
            __mmask16 m = tail_mask(columns - c);
            __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, row + c), centre);
            squares = _mm512_fmadd_ps(d, d, squares);
        }
        __m512 scale = _mm512_set1_ps(1.0f / sqrtf(_mm512_reduce_add_ps(squares) / columns + epsilon));
        for (int c = 0; c < columns; c += 16) {
            __mmask16 m = tail_mask(columns - c);
            __m512 d = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, row + c), centre), scale);
            __m512 y = _mm512_fmadd_ps(d, _mm512_maskz_loadu_ps(m, gamma + c), _mm512_maskz_loadu_ps(m, beta + c));
            _mm512_mask_storeu_ps(row + c, m, y);
        }
    }
}

#endif

// MARK: Linear layers on packed panels

#define EK_PANEL 32
#define EK_TILE 12

int ek_panels_available(void) { return avx512() || avx2(); }

static void linear_scalar(const float *input, int rows, int inputs, const float *panels, const float *bias, int outputs,
                          float *output, int stride) {
    for (int m = 0; m < rows; m++) {
        for (int n = 0; n < outputs; n++) {
            const float *panel = panels + (long)(n / EK_PANEL) * inputs * EK_PANEL + n % EK_PANEL;
            float sum = bias[n];
            for (int k = 0; k < inputs; k++) sum += input[(long)m * inputs + k] * panel[(long)k * EK_PANEL];
            output[(long)m * stride + n] = sum;
        }
    }
}

long ek_panel_floats(int inputs, int outputs) { return (long)((outputs + EK_PANEL - 1) / EK_PANEL) * inputs * EK_PANEL; }

void ek_pack_panels(const float *weight, int inputs, int outputs, float *panels) {
    int count = (outputs + EK_PANEL - 1) / EK_PANEL;
    for (int j = 0; j < count; j++) {
        float *panel = panels + (long)j * inputs * EK_PANEL;
        for (int k = 0; k < inputs; k++) {
            for (int c = 0; c < EK_PANEL; c++) {
                int n = j * EK_PANEL + c;
                panel[(long)k * EK_PANEL + c] = n < outputs ? weight[(long)n * inputs + k] : 0;
            }
        }
    }
}

#if EK_X86
/// 12 rows (`rows`, `inputs` apart) times one panel of 32 outputs, 24 accumulators in registers.
EK_TARGET static inline void tile512(const float *rows, long inputs, const float *panel, const float *bias, int n0,
                                     int outputs, int live, float *output, int stride) {
    __mmask16 mask0 = tail_mask(outputs - n0);
    __mmask16 mask1 = outputs - n0 > 16 ? tail_mask(outputs - n0 - 16) : 0;
    __m512 b0 = _mm512_maskz_loadu_ps(mask0, bias + n0);
    __m512 b1 = _mm512_maskz_loadu_ps(mask1, bias + n0 + 16);
    __m512 a00 = b0, a01 = b1, a10 = b0, a11 = b1, a20 = b0, a21 = b1, a30 = b0, a31 = b1, a40 = b0, a41 = b1, a50 = b0,
           a51 = b1, a60 = b0, a61 = b1, a70 = b0, a71 = b1, a80 = b0, a81 = b1, a90 = b0, a91 = b1, aA0 = b0, aA1 = b1,
           aB0 = b0, aB1 = b1;
    const float *r0 = rows, *r3 = rows + 3 * inputs, *r6 = rows + 6 * inputs, *r9 = rows + 9 * inputs;
    for (long k = 0; k < inputs; k++) {
        __m512 w0 = _mm512_loadu_ps(panel + k * EK_PANEL);
        __m512 w1 = _mm512_loadu_ps(panel + k * EK_PANEL + 16);
        __m512 x;
#define EK_ROW(base, offset, acc0, acc1)                 \
        x = _mm512_set1_ps((base)[(offset) * inputs + k]); \
        acc0 = _mm512_fmadd_ps(x, w0, acc0);               \
        acc1 = _mm512_fmadd_ps(x, w1, acc1);
        EK_ROW(r0, 0, a00, a01) EK_ROW(r0, 1, a10, a11) EK_ROW(r0, 2, a20, a21)
        EK_ROW(r3, 0, a30, a31) EK_ROW(r3, 1, a40, a41) EK_ROW(r3, 2, a50, a51)
        EK_ROW(r6, 0, a60, a61) EK_ROW(r6, 1, a70, a71) EK_ROW(r6, 2, a80, a81)
        EK_ROW(r9, 0, a90, a91) EK_ROW(r9, 1, aA0, aA1) EK_ROW(r9, 2, aB0, aB1)
#undef EK_ROW
    }
    __m512 results[EK_TILE][2] = {{a00, a01}, {a10, a11}, {a20, a21}, {a30, a31}, {a40, a41}, {a50, a51},
                                  {a60, a61}, {a70, a71}, {a80, a81}, {a90, a91}, {aA0, aA1}, {aB0, aB1}};
    for (int r = 0; r < live; r++) {
        float *target = output + (long)r * stride + n0;
        _mm512_mask_storeu_ps(target, mask0, results[r][0]);
        _mm512_mask_storeu_ps(target + 16, mask1, results[r][1]);
    }
}

/// Rows in blocks of 96 (kept in cache while every panel passes over them); within a block, each
/// panel is read once per 12 rows. A last tile of fewer than 12 rows is copied, zero-padded.
EK_TARGET static void linear512(const float *input, int rows, int inputs, const float *panels, const float *bias, int outputs,
                                float *output, int stride) {
    int count = (outputs + EK_PANEL - 1) / EK_PANEL;
    int full = rows / EK_TILE * EK_TILE;
    int left = rows - full;
    float *padded = 0;
    if (left > 0) {
        padded = calloc((size_t)EK_TILE * (size_t)inputs, sizeof(float));
        if (!padded) return linear_scalar(input, rows, inputs, panels, bias, outputs, output, stride);
        memcpy(padded, input + (long)full * inputs, sizeof(float) * (size_t)left * (size_t)inputs);
    }
    for (int b0 = 0; b0 < rows; b0 += 8 * EK_TILE) {
        int blockEnd = rows - b0 < 8 * EK_TILE ? rows : b0 + 8 * EK_TILE;
        for (int j = 0; j < count; j++) {
            const float *panel = panels + (long)j * inputs * EK_PANEL;
            for (int m0 = b0; m0 < blockEnd; m0 += EK_TILE) {
                int live = blockEnd - m0 < EK_TILE ? blockEnd - m0 : EK_TILE;
                const float *source = m0 < full ? input + (long)m0 * inputs : padded;
                tile512(source, inputs, panel, bias, j * EK_PANEL, outputs, live, output + (long)m0 * stride, stride);
            }
        }
    }
    free(padded);
}
#endif

#if EK_X86
static void linear256(const float *input, int rows, int inputs, const float *panels, const float *bias, int outputs,
                      float *output, int stride);
#endif

void ek_linear_panels(const float *input, int rows, int inputs, const float *panels, const float *bias, int outputs,
                     float *output, int stride) {
#if EK_X86
    if (avx512()) return linear512(input, rows, inputs, panels, bias, outputs, output, stride);
    if (avx2()) return linear256(input, rows, inputs, panels, bias, outputs, output, stride);
#endif
    linear_scalar(input, rows, inputs, panels, bias, outputs, output, stride);
}


// MARK: AVX2 (with FMA)

#if EK_X86
#define EK_TARGET2 __attribute__((target("avx2,fma")))

/// exp(x) as exp512, with 2^n built from its exponent bits (AVX2 has no scalef).
EK_TARGET2 static inline __m256 exp256(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(EK_EXP_LOW)), _mm256_set1_ps(EK_EXP_HIGH));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(EK_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(EK_LN2_HIGH), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(EK_LN2_LOW), r);
    __m256 p = _mm256_set1_ps(EK_EXP_P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EK_EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EK_EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EK_EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EK_EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EK_EXP_P5));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

EK_TARGET2 static inline __m256 erf256(__m256 x) {
    __m256 sign = _mm256_and_ps(x, _mm256_set1_ps(-0.0f));
    __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(ax, _mm256_set1_ps(EK_ERF_P), _mm256_set1_ps(1.0f)));
    __m256 p = _mm256_set1_ps(EK_ERF_A5);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(EK_ERF_A4));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(EK_ERF_A3));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(EK_ERF_A2));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(EK_ERF_A1));
    p = _mm256_mul_ps(p, t);
    __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(ax, ax)));
    return _mm256_or_ps(_mm256_fnmadd_ps(p, e, _mm256_set1_ps(1.0f)), sign);
}

EK_TARGET2 static inline float hsum256(__m256 v) {
    float lanes[8];
    _mm256_storeu_ps(lanes, v);
    return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

EK_TARGET2 static inline float hmax256(__m256 v) {
    float lanes[8];
    _mm256_storeu_ps(lanes, v);
    float m = lanes[0];
    for (int i = 1; i < 8; i++) m = fmaxf(m, lanes[i]);
    return m;
}

EK_TARGET2 static void gelu256(float *x, long count) {
    long i = 0;
    for (; i + 8 <= count; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 e = erf256(_mm256_mul_ps(v, _mm256_set1_ps(0.70710678118654752f)));
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), v), _mm256_add_ps(_mm256_set1_ps(1.0f), e)));
    }
    gelu_scalar(x + i, count - i);
}

EK_TARGET2 static void softmax256(float *x, int rows, int columns) {
    for (int r = 0; r < rows; r++) {
        float *row = x + (long)r * columns;
        int c = 0;
        __m256 largest = _mm256_set1_ps(-INFINITY);
        for (; c + 8 <= columns; c += 8) largest = _mm256_max_ps(largest, _mm256_loadu_ps(row + c));
        float top = hmax256(largest);
        for (; c < columns; c++) top = fmaxf(top, row[c]);
        __m256 vtop = _mm256_set1_ps(top);
        __m256 sum = _mm256_setzero_ps();
        for (c = 0; c + 8 <= columns; c += 8) {
            __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(row + c), vtop));
            sum = _mm256_add_ps(sum, e);
            _mm256_storeu_ps(row + c, e);
        }
        float total = hsum256(sum);
        for (; c < columns; c++) {
            row[c] = expf(row[c] - top);
            total += row[c];
        }
        __m256 inverse = _mm256_set1_ps(1.0f / total);
        for (c = 0; c + 8 <= columns; c += 8) _mm256_storeu_ps(row + c, _mm256_mul_ps(_mm256_loadu_ps(row + c), inverse));
        for (; c < columns; c++) row[c] *= 1.0f / total;
    }
}

EK_TARGET2 static void layernorm256(float *x, const float *residual, int rows, int columns, const float *gamma,
                                    const float *beta, float epsilon) {
    if (columns % 8 != 0) return layernorm_scalar(x, residual, rows, columns, gamma, beta, epsilon);
    for (int r = 0; r < rows; r++) {
        float *row = x + (long)r * columns;
        __m256 sum = _mm256_setzero_ps();
        for (int c = 0; c < columns; c += 8) {
            __m256 v = _mm256_loadu_ps(row + c);
            if (residual) {
                v = _mm256_add_ps(v, _mm256_loadu_ps(residual + (long)r * columns + c));
                _mm256_storeu_ps(row + c, v);
            }
            sum = _mm256_add_ps(sum, v);
        }
        __m256 centre = _mm256_set1_ps(hsum256(sum) / columns);
        __m256 squares = _mm256_setzero_ps();
        for (int c = 0; c < columns; c += 8) {
            __m256 d = _mm256_sub_ps(_mm256_loadu_ps(row + c), centre);
            squares = _mm256_fmadd_ps(d, d, squares);
        }
        __m256 scale = _mm256_set1_ps(1.0f / sqrtf(hsum256(squares) / columns + epsilon));
        for (int c = 0; c < columns; c += 8) {
            __m256 d = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(row + c), centre), scale);
            _mm256_storeu_ps(row + c, _mm256_fmadd_ps(d, _mm256_loadu_ps(gamma + c), _mm256_loadu_ps(beta + c)));
        }
    }
}

/// 6 rows times half a panel (16 outputs): 12 accumulators in the 16 registers AVX2 has.
EK_TARGET2 static void linear256(const float *input, int rows, int inputs, const float *panels, const float *bias, int outputs,
                                 float *output, int stride) {
    int count = (outputs + EK_PANEL - 1) / EK_PANEL;
    for (int m0 = 0; m0 < rows; m0 += 6) {
        int live = rows - m0 < 6 ? rows - m0 : 6;
        const float *sources[6];
        for (int r = 0; r < 6; r++) sources[r] = input + (long)(m0 + (r < live ? r : 0)) * inputs;
        for (int j = 0; j < count; j++) {
            const float *panel = panels + (long)j * inputs * EK_PANEL;
            for (int h = 0; h < 2; h++) {
                int n0 = j * EK_PANEL + h * 16;
                if (n0 >= outputs) break;
                float b[16];
                for (int c = 0; c < 16; c++) b[c] = n0 + c < outputs ? bias[n0 + c] : 0;
                __m256 acc[6][2];
                for (int r = 0; r < 6; r++) {
                    acc[r][0] = _mm256_loadu_ps(b);
                    acc[r][1] = _mm256_loadu_ps(b + 8);
                }
                for (int k = 0; k < inputs; k++) {
                    __m256 w0 = _mm256_loadu_ps(panel + (long)k * EK_PANEL + h * 16);
                    __m256 w1 = _mm256_loadu_ps(panel + (long)k * EK_PANEL + h * 16 + 8);
                    for (int r = 0; r < 6; r++) {
                        __m256 v = _mm256_broadcast_ss(sources[r] + k);
                        acc[r][0] = _mm256_fmadd_ps(v, w0, acc[r][0]);
                        acc[r][1] = _mm256_fmadd_ps(v, w1, acc[r][1]);
                    }
                }
                for (int r = 0; r < live; r++) {
                    float out[16];
                    _mm256_storeu_ps(out, acc[r][0]);
                    _mm256_storeu_ps(out + 8, acc[r][1]);
                    float *target = output + (long)(m0 + r) * stride + n0;
                    int width = outputs - n0 < 16 ? outputs - n0 : 16;
                    memcpy(target, out, sizeof(float) * (size_t)width);
                }
            }
        }
    }
}
#endif

// MARK: Dispatch

void ek_gelu(float *x, long count) {
#if EK_X86
    if (avx512()) return gelu512(x, count);
    if (avx2()) return gelu256(x, count);
#endif
    gelu_scalar(x, count);
}

void ek_softmax_rows(float *x, int rows, int columns) {
#if EK_X86
    if (avx512()) return softmax512(x, rows, columns);
    if (avx2()) return softmax256(x, rows, columns);
#endif
    softmax_scalar(x, rows, columns);
}

void ek_residual_layernorm(float *x, const float *residual, int rows, int columns, const float *gamma, const float *beta,
                           float epsilon) {
#if EK_X86
    if (avx512()) return layernorm512(x, residual, rows, columns, gamma, beta, epsilon);
    if (avx2()) return layernorm256(x, residual, rows, columns, gamma, beta, epsilon);
#endif
    layernorm_scalar(x, residual, rows, columns, gamma, beta, epsilon);
}

