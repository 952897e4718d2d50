#include "CEncoderKernels.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// Linear layers on AMX tiles (Sapphire Rapids and later): inputs and weights rounded to bfloat16,
// products summed in float32. One TDPBF16PS multiplies a 16x32 block of inputs by a 32x16 block
// of weights, 8,192 multiply-adds, where an AVX-512 FMA does 16.

#if defined(__x86_64__) && defined(__linux__)
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#define EK_AMX 1
#define EK_AMX_TARGET __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw")))
#define EK_CVT_TARGET __attribute__((target("avx512f,avx512bw")))
#else
#define EK_AMX 0
#endif

static int amx_disabled = 0;

void ek_disable_amx(int disabled) { amx_disabled = disabled; }

/// The hardware and the kernel's permission, whatever tests asked for: a model packed for AMX
/// keeps running on it.
static int amx_ready(void) {
#if EK_AMX
    // Benign race: every thread computes the same answer, and asking the kernel twice is harmless.
    static int cached = -1;
    if (cached < 0) {
        unsigned a, b, c, d;
        int tiles = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d & (1u << 24)) && (d & (1u << 22)) && (b & (1u << 16)) &&
                    (b & (1u << 30));
        // Linux hands out the 8 kB of tile state only to processes that ask (ARCH_REQ_XCOMP_PERM
        // for XFEATURE_XTILEDATA); it refuses when a thread's signal stack is too small for it.
        cached = tiles && syscall(SYS_arch_prctl, 0x1023, 18) == 0;
    }
    return cached;
#else
    return 0;
#endif
}

int ek_amx_available(void) { return !amx_disabled && amx_ready(); }

int ek_bf16_shape_supported(int inputs, int outputs) { return inputs > 0 && outputs > 0 && inputs % 32 == 0 && outputs % 32 == 0; }

long ek_bf16_panel_halves(int inputs, int outputs) { return (long)inputs * outputs; }

static uint16_t to_bf16(float value) {
    uint32_t bits;
    memcpy(&bits, &value, 4);
    // Round to nearest, ties to even (what PyTorch's conversion does).
    bits += 0x7FFF + ((bits >> 16) & 1);
    return (uint16_t)(bits >> 16);
}

/// Blocks of 16 k-pairs by 16 outputs, as a tile holds them: block (nb, kb) has, for each pair r of
/// inputs 32kb + 2r and 32kb + 2r + 1, the two weights of outputs 16nb..16nb+15 side by side.
void ek_pack_bf16(const float *weight, int inputs, int outputs, unsigned short *panels) {
    int kblocks = inputs / 32;
    for (int nb = 0; nb < outputs / 16; nb++) {
        for (int kb = 0; kb < kblocks; kb++) {
            uint16_t *block = panels + ((long)nb * kblocks + kb) * 512;
            for (int r = 0; r < 16; r++) {
                for (int c = 0; c < 16; c++) {
                    const float *row = weight + (long)(nb * 16 + c) * inputs + kb * 32 + 2 * r;
                    block[r * 32 + 2 * c] = to_bf16(row[0]);
                    block[r * 32 + 2 * c + 1] = to_bf16(row[1]);
                }
            }
        }
    }
}

#if EK_AMX
struct tile_config {
    uint8_t palette;
    uint8_t start_row;
    uint8_t reserved[14];
    uint16_t bytes_per_row[16];
    uint8_t rows[16];
};

/// `count` floats to bfloat16, rounded to nearest even.
EK_CVT_TARGET static void convert_row(const float *source, uint16_t *target, int count) {
    int i = 0;
    for (; i + 16 <= count; i += 16) {
        __m512i bits = _mm512_castps_si512(_mm512_loadu_ps(source + i));
        __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
        bits = _mm512_add_epi32(bits, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7FFF)));
        _mm256_storeu_si256((__m256i *)(target + i), _mm512_cvtepi32_epi16(_mm512_srli_epi32(bits, 16)));
    }
    for (; i < count; i++) target[i] = to_bf16(source[i]);
}

/// Rows in blocks of 32 (two A tiles), outputs in blocks of 32 (two B tiles), four C tiles summed
/// over the inputs 32 at a time. A block's 32 input rows, converted once, stay in cache while all
/// the weights pass over them.
EK_AMX_TARGET static int linear_amx(const float *input, int rows, int inputs, const uint16_t *panels, const float *bias,
                                    int outputs, float *output, int stride) {
    int kblocks = inputs / 32;
    // Scratch kept per thread (at most 32 rows of the widest layer, 96 kB here): allocating it per
    // call put small blocks among the forward pass's large ones and kept freed memory resident.
    static __thread uint16_t *a = 0;
    static __thread size_t capacity = 0;
    static __thread float c[32 * 32] __attribute__((aligned(64)));
    size_t needed = (size_t)32 * (size_t)inputs;
    if (needed > capacity) {
        free(a);
        a = aligned_alloc(64, needed * sizeof(uint16_t));
        capacity = a ? needed : 0;
        if (!a) return 0;
    }
    struct tile_config config;
    memset(&config, 0, sizeof config);
    config.palette = 1;
    for (int t = 0; t < 8; t++) {
        config.rows[t] = 16;
        config.bytes_per_row[t] = 64;
    }
    _tile_loadconfig(&config);
    long a_stride = (long)inputs * 2;
    for (int m0 = 0; m0 < rows; m0 += 32) {
        int live = rows - m0 < 32 ? rows - m0 : 32;
        for (int r = 0; r < live; r++) convert_row(input + (long)(m0 + r) * inputs, a + (long)r * inputs, inputs);
        if (live < 32) memset(a + (long)live * inputs, 0, (size_t)(32 - live) * (size_t)inputs * sizeof(uint16_t));
        for (int n0 = 0; n0 < outputs; n0 += 32) {
            const uint16_t *b0 = panels + (long)(n0 / 16) * kblocks * 512;
            const uint16_t *b1 = b0 + (long)kblocks * 512;
            _tile_zero(0);
            _tile_zero(1);
            _tile_zero(2);
            _tile_zero(3);
            for (int kb = 0; kb < kblocks; kb++) {
                _tile_loadd(4, a + kb * 32, a_stride);
                _tile_loadd(5, a + 16L * inputs + kb * 32, a_stride);
                _tile_loadd(6, b0 + (long)kb * 512, 64);
                _tile_loadd(7, b1 + (long)kb * 512, 64);
                _tile_dpbf16ps(0, 4, 6);
                _tile_dpbf16ps(1, 4, 7);
                _tile_dpbf16ps(2, 5, 6);
                _tile_dpbf16ps(3, 5, 7);
            }
            _tile_stored(0, c, 128);
            _tile_stored(1, c + 16, 128);
            _tile_stored(2, c + 16 * 32, 128);
            _tile_stored(3, c + 16 * 32 + 16, 128);
            __m512 bias0 = _mm512_loadu_ps(bias + n0), bias1 = _mm512_loadu_ps(bias + n0 + 16);
            for (int r = 0; r < live; r++) {
                float *target = output + (long)(m0 + r) * stride + n0;
                _mm512_storeu_ps(target, _mm512_add_ps(_mm512_load_ps(c + r * 32), bias0));
                _mm512_storeu_ps(target + 16, _mm512_add_ps(_mm512_load_ps(c + r * 32 + 16), bias1));
            }
        }
    }
    // Hands the tile state back: a thread holding it costs 8 kB more at every context switch.
    _tile_release();
    return 1;
}
#endif

/// output = bias + input · weightᵀ on AMX. Returns 0 (nothing written) when it cannot run here.
int ek_linear_bf16(const float *input, int rows, int inputs, const unsigned short *panels, const float *bias, int outputs,
                   float *output, int stride) {
#if EK_AMX
    if (!amx_ready() || !ek_bf16_shape_supported(inputs, outputs)) return 0;
    return linear_amx(input, rows, inputs, panels, bias, outputs, output, stride);
#else
    (void)input, (void)rows, (void)panels, (void)bias, (void)output, (void)stride;
    (void)inputs, (void)outputs;
    return 0;
#endif
}
