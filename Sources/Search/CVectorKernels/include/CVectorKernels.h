#ifndef CVECTORKERNELS_H
#define CVECTORKERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// int8 pre-filter kernels for the exact L2 index: AVX512-VNNI or AVX2, chosen at run time from
// the CPU, and a portable C reference. Every level computes the same integer dot products and the
// same float bounds, bit for bit, over the same layouts.
//
// They never decide a result: from 8-bit codes of the rows and the query they compute, for every
// row, rigorous lower and upper bounds on the squared distance, and report the rows whose lower
// bound can still beat the k-th best upper bound. The caller re-ranks those rows exactly (float64).
//
// A vector x is coded per row as x ~ a q with a = max|x_i| / 127 and q_i in [-127, 127]; e = x - a q
// is the coding error and E >= |e| is kept with the row. Rows store q + 128 (unsigned, the operand
// VNNI multiplies unsigned), the query stores q' (signed), so the integer dot product of the codes is
// exact and q.q' = sum((q_i + 128) q'_i) - 128 sum(q'_i). With x^ = a q and y^ = b q':
//   x.y = a b (q.q') + x^.e_y + e_x.y,  |x^.e_y| <= (|x| + E_x) E_y,  |e_x.y| <= E_x |y|.
// Layout: rows are `padded` codes each (`padded` a multiple of 64, code 128 after the dimension),
// 64-byte aligned; queries are `padded` signed codes (0 after the dimension), 64-byte aligned.
// Query codes are never -128 (vk_prepare_query clamps them): the AVX2 kernels rely on it.

/// The constants of one query's bounds:
/// lower = (xn + norm)(1 - relative) - a twoScale d - reach (len + E) - spread E - absolute,
/// upper = (xn + norm)(1 + relative) - a twoScale d + reach (len + E) + spread E + absolute,
/// where d = (unsigned dot product of the codes) - offset, and a, xn, len, E are the row's scale,
/// squared norm, length and coding error.
typedef struct {
    float norm;
    float twoScale;
    int32_t offset;
    float reach;
    float spread;
    float relative;
    float absolute;
} vk_query;

/// The rows of one block: codes plus, per row, what its bounds need.
typedef struct {
    const uint8_t *codes;
    const float *norms;    // squared norm (float64 sum, rounded)
    const float *lengths;  // norm, rounded up
    const float *scales;   // a
    const float *errors;   // E, rounded up
} vk_rows;

typedef struct {
    uint32_t row;   // index within the block passed in
    uint32_t lane;  // query within the group (batch kernel); 0 for single queries
    float lower;
    float upper;
} vk_candidate;

/// Scan levels. The portable level is the reference the tests compare against; the index uses the
/// float32 kernel instead of it.
#define VK_LEVEL_PORTABLE 0
#define VK_LEVEL_AVX2 1
#define VK_LEVEL_AVX512_VNNI 2

/// The highest level this CPU and OS can run.
int vk_cpu_level(void);

/// The level searches use by default: vk_cpu_level(), capped by the environment variable
/// VECTOR_KERNELS ("float32", "avx2" or "avx512-vnni", read once) to compare paths on one machine.
int vk_int8_level(void);

/// vk_int8_level() > VK_LEVEL_PORTABLE: the index uses the int8 pre-filter.
bool vk_int8_available(void);

/// The name of a level: "portable", "avx2", "avx512-vnni".
const char *vk_level_name(int level);

/// What the index runs by default, for logs: vk_level_name(vk_int8_level()), or "float32" when
/// no int8 level is available.
const char *vk_kernel_path(void);

/// Per row: squared norm and length (float64 sums), and with `codes` not NULL the row's codes,
/// scale and coding error. Every level writes the same codes and scales.
void vk_prepare_rows(const float *rows, size_t count, int dimension, uint8_t *codes, int padded, float *norms,
                     float *lengths, float *scales, float *errors);
/// The same at a given level (capped at vk_cpu_level()).
void vk_prepare_rows_at(int level, const float *rows, size_t count, int dimension, uint8_t *codes, int padded,
                        float *norms, float *lengths, float *scales, float *errors);

/// The squared norm (double precision, rounded to float) and length (rounded up) of one vector.
void vk_norm(const float *vector, int dimension, float *norm, float *length);

/// Codes a query (`padded` signed codes) and returns the constants of its bounds.
vk_query vk_prepare_query(const float *query, int dimension, int padded, int8_t *codes);

/// Bounds for every row of a block against one query; appends rows whose lower bound is <= tau
/// to `out` (room for `count` entries), in row order, and returns how many.
size_t vk_scan_one(vk_rows rows, size_t count, int padded, const int8_t *query, vk_query bounds, float tau,
                   vk_candidate *out);
/// The same at a given level (capped at vk_cpu_level()): the index passes the level it resolved,
/// the tests every level.
size_t vk_scan_one_at(int level, vk_rows rows, size_t count, int padded, const int8_t *query, vk_query bounds,
                      float tau, vk_candidate *out);

/// Interleaves up to 32 coded queries into the group layout vk_scan_group reads: padded/4 steps
/// of 32 lanes, each lane four consecutive codes. Missing lanes are zero.
void vk_pack_group(const int8_t *queries, int count, int padded, int32_t *packed);

/// Bounds for every row of a block against a group of 32 packed queries; appends (row, lane)
/// pairs whose lower bound is <= tau[lane] to `out` (room for 32 * count entries), in row order,
/// lanes ascending within a row.
/// Lanes with tau = -infinity (no query) never match.
size_t vk_scan_group(vk_rows rows, size_t count, int padded, const int32_t *packed, const vk_query *bounds,
                     const float *tau, vk_candidate *out);
size_t vk_scan_group_at(int level, vk_rows rows, size_t count, int padded, const int32_t *packed,
                        const vk_query *bounds, const float *tau, vk_candidate *out);

/// Squared L2 distance between two float vectors, accumulated in float64 (the re-ranking step).
double vk_distance_f64(const float *a, const float *b, int dimension);

#endif
