// The portable level: the reference the SIMD levels must equal bit for bit, and what runs where
// no SIMD level does (the index then prefers its float32 kernel).
#include "Kernels.h"

#include <string.h>

// Each operation rounds once, in the order of the SIMD levels' emit code: contracting a product
// and a sum into one fused operation would change the bits. (-ffp-contract=fast or -ffast-math
// would fuse across statements, in the SIMD levels too, whatever the pragma: the levels would then
// differ in the last bit. Neither the manifest nor scripts/build-release.sh asks for them.)
#pragma STDC FP_CONTRACT OFF

/// Appends (row, lane) when the pair's lower bound is <= tau; `dot` is the signed code dot
/// product q.q' (the unsigned one minus the query's offset).
static size_t emit(int32_t dot, vk_rows rows, size_t row, const vk_query *y, float tau, uint32_t lane,
                   vk_candidate *out, size_t found) {
    const float d = (float)dot;
    const float twice = rows.scales[row] * (y->twoScale * d);
    const float reachTerm = y->reach * (rows.lengths[row] + rows.errors[row]);
    const float spreadTerm = y->spread * rows.errors[row];
    const float slack = reachTerm + spreadTerm;
    const float sum = rows.norms[row] + y->norm;
    const float shrink = 1 - y->relative, stretch = 1 + y->relative;
    const float lower = ((sum * shrink - twice) - slack) - y->absolute;
    if (!(lower <= tau)) return found;
    const float upper = ((sum * stretch - twice) + slack) + y->absolute;
    out[found] = (vk_candidate){(uint32_t)row, lane, lower, upper};
    return found + 1;
}

size_t vk_scan_one_portable(vk_rows rows, size_t count, int padded, const int8_t *query, vk_query b, float tau,
                            vk_candidate *out) {
    size_t found = 0;
    for (size_t r = 0; r < count; r++) {
        const uint8_t *x = rows.codes + r * (size_t)padded;
        int32_t dot = 0;
        for (int i = 0; i < padded; i++) dot += ((int32_t)x[i] - 128) * query[i];
        found = emit(dot, rows, r, &b, tau, 0, out, found);
    }
    return found;
}

size_t vk_scan_group_portable(vk_rows rows, size_t count, int padded, const int32_t *packed,
                              const vk_query *bounds, const float *tau, vk_candidate *out) {
    const int steps = padded / 4;
    // relative and absolute are the same for every query: taken from the first, as the SIMD
    // levels do (a missing lane's zeroed constants then change nothing).
    vk_query y[32];
    for (int lane = 0; lane < 32; lane++) {
        y[lane] = bounds[lane];
        y[lane].relative = bounds[0].relative;
        y[lane].absolute = bounds[0].absolute;
    }
    size_t found = 0;
    for (size_t r = 0; r < count; r++) {
        const uint8_t *x = rows.codes + r * (size_t)padded;
        for (uint32_t lane = 0; lane < 32; lane++) {
            int32_t dot = 0;
            for (int t = 0; t < steps; t++) {
                int8_t q[4];
                memcpy(q, &packed[(size_t)t * 32 + lane], sizeof q);
                for (int j = 0; j < 4; j++) dot += ((int32_t)x[4 * t + j] - 128) * q[j];
            }
            found = emit(dot, rows, r, &y[lane], tau[lane], lane, out, found);
        }
    }
    return found;
}
