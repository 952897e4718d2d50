#ifndef CVECTORKERNELS_H
#define CVECTORKERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// bfloat16 pre-filter kernels for the exact L2 index (AVX512-BF16, chosen at run time).
//
// Debian's OpenBLAS is built without its bfloat16 routines, so these few kernels are our own.
// They never decide a result: they compute, for every row, rigorous lower and upper bounds on the
// squared distance from bfloat16 dot products, and report the rows whose lower bound can still
// beat the k-th best upper bound. The caller re-ranks those rows exactly (float64).
//
// Layout: rows are `padded` bfloat16 values each (`padded` is a multiple of 32, zeros after the
// dimension), 64-byte aligned.

/// One squared-distance bound for a query: lower = (qn + xn)(1 - relative) - 2 s - slope len - absolute,
/// upper = (qn + xn)(1 + relative) - 2 s + slope len + absolute, where s is the bfloat16 dot product,
/// xn the row's squared norm and len its length (norm).
typedef struct {
    float queryNorm;
    float slope;
    float relative;
    float absolute;
} vk_bounds;

typedef struct {
    uint32_t row;   // index within the block passed in
    uint32_t lane;  // query within the group (batch kernel); 0 for single queries
    float lower;
    float upper;
} vk_candidate;

/// True when this CPU and OS can run the kernels below.
bool vk_bf16_available(void);

/// Rows of `dimension` floats to padded bfloat16 rows (round to nearest even), plus each row's
/// squared norm and length computed in double precision (the length rounded up). Requires
/// vk_bf16_available() when `out` is not NULL; with `out` NULL only the norms are computed.
void vk_prepare_rows(const float *rows, size_t count, int dimension, uint16_t *out, int padded,
                     float *norms, float *lengths);

/// The squared norm (double precision, rounded to float) and length (rounded up) of one vector.
void vk_norm(const float *vector, int dimension, float *norm, float *length);

/// Bounds for every row of a block against one query (padded bfloat16); appends rows whose
/// lower bound is <= tau to `out` (room for `count` entries) and returns how many.
size_t vk_scan_one(const uint16_t *rows, size_t count, int padded, const uint16_t *query,
                   const float *norms, const float *lengths, vk_bounds bounds, float tau,
                   vk_candidate *out);

/// Interleaves up to 32 padded bfloat16 queries into the group layout vk_scan_group reads:
/// padded/2 steps of 32 lanes, each lane a pair of consecutive components. Missing lanes are zero.
void vk_pack_group(const uint16_t *queries, int count, int padded, uint32_t *packed);

/// Bounds for every row of a block against a group of 32 packed queries; appends (row, lane)
/// pairs whose lower bound is <= tau[lane] to `out` (room for 32 * count entries).
/// Lanes with tau = -infinity (no query) never match.
size_t vk_scan_group(const uint16_t *rows, size_t count, int padded, const uint32_t *packed,
                     const vk_bounds *bounds, const float *tau, const float *norms,
                     const float *lengths, vk_candidate *out);

/// Squared L2 distance between two float vectors, accumulated in float64 (the re-ranking step).
double vk_distance_f64(const float *a, const float *b, int dimension);

#endif
