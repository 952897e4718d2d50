// What the level files share; not part of the module's interface.
#ifndef CVECTORKERNELS_KERNELS_H
#define CVECTORKERNELS_KERNELS_H

#include "CVectorKernels.h"

#if defined(__x86_64__)
#define VK_X86 1
#else
#define VK_X86 0
#endif

#define VK_HIDDEN __attribute__((visibility("hidden")))

/// Codes below 2^-100 in magnitude would make 127 / max overflow: such a vector is coded as zero,
/// its whole length then counting as coding error (still a rigorous bound).
static inline float vk_inverse_step(float max) { return max > 0x1p-100f ? 127.0f / max : 0; }

/// A row's codes (+128), scale, and float64 sums of squared coding errors and of squares. Every
/// level writes the same codes and scale: x_i / a rounded to nearest even, clamped to [-127, 127].
typedef void (*vk_row_coder)(const float *x, int dimension, int padded, uint8_t *out, float *scale,
                             double *squaredError, double *squaredNorm);

VK_HIDDEN size_t vk_scan_one_portable(vk_rows rows, size_t count, int padded, const int8_t *query, vk_query b,
                                      float tau, vk_candidate *out);
VK_HIDDEN size_t vk_scan_group_portable(vk_rows rows, size_t count, int padded, const int32_t *packed,
                                        const vk_query *bounds, const float *tau, vk_candidate *out);

#if VK_X86
VK_HIDDEN void vk_code_row_avx2(const float *x, int dimension, int padded, uint8_t *out, float *scale,
                                double *squaredError, double *squaredNorm);
VK_HIDDEN size_t vk_scan_one_avx2(vk_rows rows, size_t count, int padded, const int8_t *query, vk_query b, float tau,
                                  vk_candidate *out);
VK_HIDDEN size_t vk_scan_group_avx2(vk_rows rows, size_t count, int padded, const int32_t *packed,
                                    const vk_query *bounds, const float *tau, vk_candidate *out);
VK_HIDDEN double vk_distance_avx2(const float *a, const float *b, int dimension);

VK_HIDDEN void vk_code_row_avx512(const float *x, int dimension, int padded, uint8_t *out, float *scale,
                                  double *squaredError, double *squaredNorm);
VK_HIDDEN size_t vk_scan_one_avx512(vk_rows rows, size_t count, int padded, const int8_t *query, vk_query b,
                                    float tau, vk_candidate *out);
VK_HIDDEN size_t vk_scan_group_avx512(vk_rows rows, size_t count, int padded, const int32_t *packed,
                                      const vk_query *bounds, const float *tau, vk_candidate *out);
VK_HIDDEN double vk_distance_avx512(const float *a, const float *b, int dimension);
#endif

#endif
