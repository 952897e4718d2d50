#include "CEncoderKernels.h"

#include <float.h>
#include <math.h>

long ek_first_nonfinite(const float *x, long count) {
    const long block = 4096;
    for (long start = 0; start < count; start += block) {
        long end = start + block < count ? start + block : count;
        // No early exit inside a block, so the test vectorises (the whole model's weights: ~90 MB).
        int bad = 0;
        for (long i = start; i < end; i++) bad |= !(fabsf(x[i]) <= FLT_MAX);
        if (!bad) continue;
        for (long i = start; i < end; i++) {
            if (!(fabsf(x[i]) <= FLT_MAX)) return i;
        }
    }
    return -1;
}
