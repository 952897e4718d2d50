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

/// What the CPU has, whatever level tests forced: a model keeps the linear kernels it was packed
/// for (`ek_linear_panels_on`).
static bool cpu_avx512(void) {
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
static bool cpu_avx2(void) {
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

static bool avx512(void) { return portable_only == 0 && cpu_avx512(); }
static bool avx2(void) { return portable_only != 1 && cpu_avx2(); }

const char *ek_best_openblas_core(void) {
    if (cpu_avx512()) return "SkylakeX";
    if (cpu_avx2()) return "Haswell";
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
/// Bytes of input rows a block keeps in L2 while every panel passes over them: small enough to
/// leave a 512 kB L2 (Zen 2 and 3) room for the panel being read and the next one, fetched ahead.
/// Each block reads the whole weight again, but from L3 and prefetched: 128 and 256 kB measured
/// the same on a 1 MB L2.
#define EK_BLOCK_BYTES 131072

int ek_panels_available(void) { return avx512() || avx2(); }

int ek_model_kernels(void) {
    if (avx512()) return ek_amx_available() ? EK_KERNELS_AMX : EK_KERNELS_AVX512;
    if (avx2()) return EK_KERNELS_AVX2;
    return EK_KERNELS_OPENBLAS;
}

const char *ek_kernels_name(int kernels) {
    switch (kernels) {
    case EK_KERNELS_AMX: return "amx-bf16";
    case EK_KERNELS_AVX512: return "avx512-panels";
    case EK_KERNELS_AVX2: return "avx2-panels";
    default: return "openblas-sgemm";
    }
}

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

/// Rows per block: as many whole tiles (`tile` rows) as EK_BLOCK_BYTES of inputs hold, one at least.
static int block_rows(int inputs, int tile) {
    int rows = EK_BLOCK_BYTES / (4 * (inputs > 0 ? inputs : 1)) / tile * tile;
    return rows < tile ? tile : rows;
}

#define EK_INLINE inline __attribute__((always_inline))

#if EK_X86
/// `R` rows (`inputs` apart) times one panel of 32 outputs, 2R accumulators in registers (R at most
/// 12: 24 of the 32). Every output is bias + sum over k of x_k w_k, one FMA per k in k order, for
/// any R: the sums do not depend on how rows are tiled, and equal the AVX2 tiles' to the bit.
/// `next`, when not null, is the panel to fetch while this one is read.
EK_TARGET static EK_INLINE void tile512(int R, const float *rows, long inputs, const float *panel, const float *bias,
                                        int n0, int outputs, float *output, int stride, const float *next) {
    __mmask16 mask0 = tail_mask(outputs - n0);
    __mmask16 mask1 = outputs - n0 > 16 ? tail_mask(outputs - n0 - 16) : 0;
    __m512 b0 = _mm512_maskz_loadu_ps(mask0, bias + n0);
    __m512 b1 = _mm512_maskz_loadu_ps(mask1, bias + n0 + 16);
    __m512 acc[12][2];
    for (int r = 0; r < R; r++) {
        acc[r][0] = b0;
        acc[r][1] = b1;
    }
    for (long k = 0; k < inputs; k++) {
        if (next) {
            _mm_prefetch((const char *)(next + k * EK_PANEL), _MM_HINT_T0);
            _mm_prefetch((const char *)(next + k * EK_PANEL + 16), _MM_HINT_T0);
        }
        __m512 w0 = _mm512_loadu_ps(panel + k * EK_PANEL);
        __m512 w1 = _mm512_loadu_ps(panel + k * EK_PANEL + 16);
        for (int r = 0; r < R; r++) {
            __m512 x = _mm512_set1_ps(rows[r * inputs + k]);
            acc[r][0] = _mm512_fmadd_ps(x, w0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(x, w1, acc[r][1]);
        }
    }
    for (int r = 0; r < R; r++) {
        float *target = output + (long)r * stride + n0;
        _mm512_mask_storeu_ps(target, mask0, acc[r][0]);
        _mm512_mask_storeu_ps(target + 16, mask1, acc[r][1]);
    }
}

/// Rows in blocks that stay in L2 while every panel passes over them; within a block, each panel
/// is read once per 12 rows, and a last tile of fewer rows computes only those (no padding: a
/// short text's 8 rows cost 8 rows' work, not 12). The first tile over a panel fetches the next
/// panel: with few rows the weights stream from L3 or memory (MiniLM-L6's are 42 MB) and their
/// latency, not the FMAs, sets the pace (8 rows: 2.3× faster than without it and the padding).
EK_TARGET static void linear512(const float *input, int rows, int inputs, const float *panels, const float *bias, int outputs,
                                float *output, int stride) {
    int count = (outputs + EK_PANEL - 1) / EK_PANEL;
    int block = block_rows(inputs, 12);
    for (int b0 = 0; b0 < rows; b0 += block) {
        int end = rows - b0 < block ? rows : b0 + block;
        for (int j = 0; j < count; j++) {
            const float *panel = panels + (long)j * inputs * EK_PANEL;
            const float *next = j + 1 < count ? panel + (long)inputs * EK_PANEL : 0;
            int n0 = j * EK_PANEL;
            int m = b0;
            for (; m + 12 <= end; m += 12) {
                tile512(12, input + (long)m * inputs, inputs, panel, bias, n0, outputs, output + (long)m * stride, stride,
                        m == b0 ? next : 0);
            }
            const float *x = input + (long)m * inputs;
            float *out = output + (long)m * stride;
            const float *fetch = m == b0 ? next : 0;
            switch (end - m) {
            case 1: tile512(1, x, inputs, panel, bias, n0, outputs, out, stride, fetch); break;
            case 2: tile512(2, x, inputs, panel, bias, n0, outputs, out, stride, fetch); break;
            case 3: tile512(3, x, inputs, panel, bias, n0, outputs, out, stride, fetch); break;
            case 4: tile512(4, x, inputs, panel, bias, n0, outputs, out, stride, fetch); break;
            case 5: tile512(5, x, inputs, panel, bias, n0, outputs, out, stride, fetch); break;
            case 6: tile512(6, x, inputs, panel, bias, n0, outputs, out, stride, fetch); break;
            case 7: tile512(7, x, inputs, panel, bias, n0, outputs, out, stride, fetch); break;
            case 8: tile512(8, x, inputs, panel, bias, n0, outputs, out, stride, fetch); break;
            case 9: tile512(9, x, inputs, panel, bias, n0, outputs, out, stride, fetch); break;
            case 10: tile512(10, x, inputs, panel, bias, n0, outputs, out, stride, fetch); break;
            case 11: tile512(11, x, inputs, panel, bias, n0, outputs, out, stride, fetch); break;
            default: break;
            }
        }
    }
}
#endif

#if EK_X86
static void linear256(const float *input, int rows, int inputs, const float *panels, const float *bias, int outputs,
                      float *output, int stride);
#endif

void ek_linear_panels_on(int kernels, const float *input, int rows, int inputs, const float *panels, const float *bias,
                         int outputs, float *output, int stride) {
#if EK_X86
    if (kernels >= EK_KERNELS_AVX512 && cpu_avx512()) return linear512(input, rows, inputs, panels, bias, outputs, output, stride);
    if (kernels >= EK_KERNELS_AVX2 && cpu_avx2()) return linear256(input, rows, inputs, panels, bias, outputs, output, stride);
#endif
    (void)kernels;
    linear_scalar(input, rows, inputs, panels, bias, outputs, output, stride);
}

void ek_linear_panels(const float *input, int rows, int inputs, const float *panels, const float *bias, int outputs,
                     float *output, int stride) {
    ek_linear_panels_on(ek_model_kernels(), input, rows, inputs, panels, bias, outputs, output, stride);
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

/// `R` rows (`inputs` apart) times `V` vectors of 8 outputs of a panel (`weights` points at the
/// first in the panel's row k = 0), R·V accumulators (at most 12: with the V weights and a
/// broadcast, AVX2's 16 registers). Every output is bias + sum over k of x_k w_k, one FMA per k in k order,
/// whatever R and V: the same sums, to the bit, as tile512's. `bias` holds 8V floats; `width`
/// outputs are stored. `next`, when not null, is the panel to fetch while this one is read.
EK_TARGET2 static EK_INLINE void tile256(int R, int V, const float *rows, long inputs, const float *weights, const float *bias,
                                         float *output, int stride, int width, const float *next) {
    __m256 acc[6][4];
    for (int r = 0; r < R; r++) {
        for (int v = 0; v < V; v++) acc[r][v] = _mm256_loadu_ps(bias + 8 * v);
    }
    for (long k = 0; k < inputs; k++) {
        if (next) {
            _mm_prefetch((const char *)(next + k * EK_PANEL), _MM_HINT_T0);
            _mm_prefetch((const char *)(next + k * EK_PANEL + 16), _MM_HINT_T0);
        }
        __m256 w[4];
        for (int v = 0; v < V; v++) w[v] = _mm256_loadu_ps(weights + k * EK_PANEL + 8 * v);
        for (int r = 0; r < R; r++) {
            __m256 x = _mm256_broadcast_ss(rows + r * inputs + k);
            for (int v = 0; v < V; v++) acc[r][v] = _mm256_fmadd_ps(x, w[v], acc[r][v]);
        }
    }
    for (int r = 0; r < R; r++) {
        float *target = output + (long)r * stride;
        if (width >= 8 * V) {
            for (int v = 0; v < V; v++) _mm256_storeu_ps(target + 8 * v, acc[r][v]);
        } else {
            float lanes[32];
            for (int v = 0; v < V; v++) _mm256_storeu_ps(lanes + 8 * v, acc[r][v]);
            memcpy(target, lanes, sizeof(float) * (size_t)width);
        }
    }
}

/// A whole panel in two passes of 16 outputs: 6 rows by 32 would need 24 accumulators.
EK_TARGET2 static EK_INLINE void halves256(int R, const float *rows, long inputs, const float *panel, const float *bias,
                                           float *output, int stride, int width, const float *next) {
    tile256(R, 2, rows, inputs, panel, bias, output, stride, width, next);
    if (width > 16) tile256(R, 2, rows, inputs, panel + 16, bias + 16, output + 16, stride, width - 16, 0);
}

/// As linear512: rows in blocks kept in L2, each panel read once per 6 rows of a block (6 rows
/// by 16 outputs, 12 accumulators: two loads per 12 FMAs besides the broadcasts), a last tile of
/// 1 to 5 rows computing only those (1 to 3 over the whole panel at once, so that even one row
/// has enough independent sums to hide the FMAs' latency), the next panel fetched during the first
/// pass over each. Against OpenBLAS's sgemm (Haswell kernels), which packs the whole weight on
/// every call: 1.2–1.9× faster on 8 to 32 rows with a model's weights coming from L3 or memory,
/// the same on thousands (both near 90% of the FMA units' peak).
EK_TARGET2 static void linear256(const float *input, int rows, int inputs, const float *panels, const float *bias, int outputs,
                                 float *output, int stride) {
    int count = (outputs + EK_PANEL - 1) / EK_PANEL;
    int block = block_rows(inputs, 6);
    for (int b0 = 0; b0 < rows; b0 += block) {
        int end = rows - b0 < block ? rows : b0 + block;
        for (int j = 0; j < count; j++) {
            const float *panel = panels + (long)j * inputs * EK_PANEL;
            const float *next = j + 1 < count ? panel + (long)inputs * EK_PANEL : 0;
            int n0 = j * EK_PANEL;
            int width = outputs - n0 < EK_PANEL ? outputs - n0 : EK_PANEL;
            // The last panel's bias, zero-padded: the tiles read 16 or 32 biases.
            float padded[EK_PANEL];
            const float *b = bias + n0;
            if (width < EK_PANEL) {
                memset(padded, 0, sizeof padded);
                memcpy(padded, b, sizeof(float) * (size_t)width);
                b = padded;
            }
            int m = b0;
            for (; m + 6 <= end; m += 6) {
                halves256(6, input + (long)m * inputs, inputs, panel, b, output + (long)m * stride + n0, stride, width,
                          m == b0 ? next : 0);
            }
            const float *x = input + (long)m * inputs;
            float *out = output + (long)m * stride + n0;
            const float *fetch = m == b0 ? next : 0;
            switch (end - m) {
            case 1: tile256(1, 4, x, inputs, panel, b, out, stride, width, fetch); break;
            case 2: tile256(2, 4, x, inputs, panel, b, out, stride, width, fetch); break;
            case 3: tile256(3, 4, x, inputs, panel, b, out, stride, width, fetch); break;
            case 4: halves256(4, x, inputs, panel, b, out, stride, width, fetch); break;
            case 5: halves256(5, x, inputs, panel, b, out, stride, width, fetch); break;
            default: break;
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

