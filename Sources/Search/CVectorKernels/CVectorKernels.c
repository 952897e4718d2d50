#include "Kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// Benign races in the caches below: every thread computes the same answer.

int vk_cpu_level(void) {
#if VK_X86
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
            __builtin_cpu_supports("avx512vnni"))
            cached = VK_LEVEL_AVX512_VNNI;
        else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            cached = VK_LEVEL_AVX2;
        else
            cached = VK_LEVEL_PORTABLE;
    }
    return cached;
#else
    return VK_LEVEL_PORTABLE;
#endif
}

const char *vk_level_name(int level) {
    switch (level) {
    case VK_LEVEL_AVX512_VNNI: return "avx512-vnni";
    case VK_LEVEL_AVX2: return "avx2";
    default: return "portable";
    }
}

/// The cap VECTOR_KERNELS sets; an unknown value caps nothing.
static int environment_cap(void) {
    const char *name = getenv("VECTOR_KERNELS");
    if (!name) return VK_LEVEL_AVX512_VNNI;
    if (strcmp(name, "float32") == 0) return VK_LEVEL_PORTABLE;
    if (strcmp(name, "avx2") == 0) return VK_LEVEL_AVX2;
    return VK_LEVEL_AVX512_VNNI;
}

int vk_int8_level(void) {
    static int cached = -1;
    if (cached < 0) {
        int cap = environment_cap(), cpu = vk_cpu_level();
        cached = cpu < cap ? cpu : cap;
    }
    return cached;
}

bool vk_int8_available(void) { return vk_int8_level() > VK_LEVEL_PORTABLE; }

const char *vk_kernel_path(void) { return vk_int8_available() ? vk_level_name(vk_int8_level()) : "float32"; }

/// A level this CPU can run: never above what it supports.
static int runnable(int level) {
    int cpu = vk_cpu_level();
    return level < VK_LEVEL_PORTABLE ? VK_LEVEL_PORTABLE : level > cpu ? cpu : level;
}

// A float at or above v. The factor covers the float64 sums' own rounding (at most d 2^-53, and
// the dimension is at most 2^16).
static float round_up(double v) {
    v *= 1 + 0x1p-30;
    float f = (float)v;
    return (double)f < v ? nextafterf(f, INFINITY) : f;
}

void vk_norm(const float *vector, int dimension, float *norm, float *length) {
    double sum = 0;
    for (int i = 0; i < dimension; i++) sum += (double)vector[i] * (double)vector[i];
    *norm = (float)sum;
    *length = round_up(sqrt(sum));
}

/// Codes one vector (rows unsigned with +128, queries signed), returns the sum of squared coding
/// errors and the squared norm, both in float64.
static void code_vector_scalar(const float *x, int dimension, int padded, bool rowCodes, void *out, float *scale,
                               double *squaredError, double *squaredNorm, int32_t *codeSum) {
    float max = 0;
    for (int i = 0; i < dimension; i++) max = fmaxf(max, fabsf(x[i]));
    float inverse = vk_inverse_step(max);
    float a = inverse > 0 ? max / 127.0f : 0;
    double ee = 0, nn = 0;
    int32_t sum = 0;
    for (int i = 0; i < padded; i++) {
        int q = 0;
        if (i < dimension) {
            float r = nearbyintf(x[i] * inverse);
            q = r > 127 ? 127 : r < -127 ? -127 : (int)r;
            double e = (double)x[i] - (double)a * q;
            ee += e * e;
            nn += (double)x[i] * x[i];
        }
        sum += q;
        if (rowCodes) ((uint8_t *)out)[i] = (uint8_t)(q + 128);
        else ((int8_t *)out)[i] = (int8_t)q;
    }
    *scale = a;
    *squaredError = ee;
    *squaredNorm = nn;
    *codeSum = sum;
}

static void code_row_scalar(const float *x, int dimension, int padded, uint8_t *out, float *scale,
                            double *squaredError, double *squaredNorm) {
    int32_t unused;
    code_vector_scalar(x, dimension, padded, true, out, scale, squaredError, squaredNorm, &unused);
}

void vk_prepare_rows_at(int level, const float *rows, size_t count, int dimension, uint8_t *codes, int padded,
                        float *norms, float *lengths, float *scales, float *errors) {
    vk_row_coder coder = code_row_scalar;
#if VK_X86
    switch (runnable(level)) {
    case VK_LEVEL_AVX512_VNNI: coder = vk_code_row_avx512; break;
    case VK_LEVEL_AVX2: coder = vk_code_row_avx2; break;
    default: break;
    }
#else
    (void)level;
#endif
    for (size_t r = 0; r < count; r++) {
        const float *row = rows + r * (size_t)dimension;
        if (!codes) {
            vk_norm(row, dimension, norms + r, lengths + r);
            continue;
        }
        double ee, nn;
        coder(row, dimension, padded, codes + r * (size_t)padded, scales + r, &ee, &nn);
        norms[r] = (float)nn;
        lengths[r] = round_up(sqrt(nn));
        errors[r] = round_up(sqrt(ee));
    }
}

void vk_prepare_rows(const float *rows, size_t count, int dimension, uint8_t *codes, int padded, float *norms,
                     float *lengths, float *scales, float *errors) {
    vk_prepare_rows_at(vk_int8_level(), rows, count, dimension, codes, padded, norms, lengths, scales, errors);
}

vk_query vk_prepare_query(const float *query, int dimension, int padded, int8_t *codes) {
    float scale;
    double ee, nn;
    int32_t sum;
    code_vector_scalar(query, dimension, padded, false, codes, &scale, &ee, &nn, &sum);
    float length = round_up(sqrt(nn)), error = round_up(sqrt(ee));
    // relative: float32 rounding of the stored norm and of the twelve operations that evaluate a
    // bound, each at most 2^-24 of a magnitude under 8.1 (xn + norm) (E <= 1.008 |x| when
    // d <= 2^16, so |x^||y^| <= 2.02^2 |x||y|, and 2 |x||y| <= xn + norm): under 2^-17 in all;
    // 2^-14 is kept. absolute: underflow, at most 2^-150 per operation.
    return (vk_query){
        .norm = (float)nn,
        .twoScale = 2 * scale,
        .offset = 128 * sum,
        .reach = 2 * error,
        .spread = 2 * length,
        .relative = 0x1p-14f,
        .absolute = 0x1p-100f,
    };
}

void vk_pack_group(const int8_t *queries, int count, int padded, int32_t *packed) {
    const int steps = padded / 4;
    memset(packed, 0, (size_t)steps * 32 * sizeof(int32_t));
    for (int lane = 0; lane < count && lane < 32; lane++) {
        const int8_t *q = queries + (size_t)lane * padded;
        for (int t = 0; t < steps; t++) memcpy(&packed[(size_t)t * 32 + lane], q + 4 * t, sizeof(int32_t));
    }
}

size_t vk_scan_one_at(int level, vk_rows rows, size_t count, int padded, const int8_t *query, vk_query bounds,
                      float tau, vk_candidate *out) {
    switch (runnable(level)) {
#if VK_X86
    case VK_LEVEL_AVX512_VNNI: return vk_scan_one_avx512(rows, count, padded, query, bounds, tau, out);
    case VK_LEVEL_AVX2: return vk_scan_one_avx2(rows, count, padded, query, bounds, tau, out);
#endif
    default: return vk_scan_one_portable(rows, count, padded, query, bounds, tau, out);
    }
}

size_t vk_scan_one(vk_rows rows, size_t count, int padded, const int8_t *query, vk_query bounds, float tau,
                   vk_candidate *out) {
    return vk_scan_one_at(vk_int8_level(), rows, count, padded, query, bounds, tau, out);
}

size_t vk_scan_group_at(int level, vk_rows rows, size_t count, int padded, const int32_t *packed,
                        const vk_query *bounds, const float *tau, vk_candidate *out) {
    switch (runnable(level)) {
#if VK_X86
    case VK_LEVEL_AVX512_VNNI: return vk_scan_group_avx512(rows, count, padded, packed, bounds, tau, out);
    case VK_LEVEL_AVX2: return vk_scan_group_avx2(rows, count, padded, packed, bounds, tau, out);
#endif
    default: return vk_scan_group_portable(rows, count, padded, packed, bounds, tau, out);
    }
}

size_t vk_scan_group(vk_rows rows, size_t count, int padded, const int32_t *packed, const vk_query *bounds,
                     const float *tau, vk_candidate *out) {
    return vk_scan_group_at(vk_int8_level(), rows, count, padded, packed, bounds, tau, out);
}

static double distance_scalar(const float *a, const float *b, int dimension) {
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

double vk_distance_f64(const float *a, const float *b, int dimension) {
    // By the CPU, not by the scan level: every path is exact to float64 rounding, and the
    // results of one process must not depend on which index asked.
#if VK_X86
    static int path = -1;
    if (path < 0) {
        __builtin_cpu_init();
        path = __builtin_cpu_supports("avx512f") ? 2 : vk_cpu_level() >= VK_LEVEL_AVX2 ? 1 : 0;
    }
    if (path == 2) return vk_distance_avx512(a, b, dimension);
    if (path == 1) return vk_distance_avx2(a, b, dimension);
#endif
    return distance_scalar(a, b, dimension);
}
