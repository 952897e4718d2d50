#ifndef CENCODERKERNELS_H
#define CENCODERKERNELS_H

/// The steps of a BERT forward pass, vectorised with AVX-512 or AVX2 where the CPU has them
/// (chosen at run time; portable C otherwise). Attention's matrix products are OpenBLAS's.

/// x = 0.5 x (1 + erf(x / sqrt 2)), in place.
void ek_gelu(float *x, long count);

/// Each row of a row-major matrix replaced by its softmax.
void ek_softmax_rows(float *x, int rows, int columns);

/// Each row: x += residual (when not null), then LayerNorm with gamma, beta and epsilon.
void ek_residual_layernorm(float *x, const float *residual, int rows, int columns, const float *gamma, const float *beta,
                           float epsilon);

/// The index of the first NaN or infinite value among `count` floats, or -1 when every one is
/// finite (a model's weights are checked once, at load).
long ek_first_nonfinite(const float *x, long count);

/// Whether models loaded now get their linear weights packed into panels (AVX-512 or AVX2 with
/// FMA here, and not forced off by `ek_use_portable_kernels`); else callers use BLAS.
int ek_panels_available(void);

/// The kernels a model's linear layers run on, chosen when it is loaded.
#define EK_KERNELS_OPENBLAS 0
#define EK_KERNELS_AVX2 2
#define EK_KERNELS_AVX512 3
#define EK_KERNELS_AMX 4

/// The kernels models loaded now get, from the CPU and the level `ek_use_portable_kernels` set:
/// AMX tiles in bfloat16, else float32 panels for AVX-512 or AVX2 with FMA, else OpenBLAS's sgemm
/// (GELU, softmax and LayerNorm are then portable C).
int ek_model_kernels(void);

/// Their name as logs and stats show it: "amx-bf16", "avx512-panels", "avx2-panels",
/// "openblas-sgemm".
const char *ek_kernels_name(int kernels);

/// Packs a PyTorch linear weight (`weight`: `outputs` rows of `inputs`) into panels of 32 outputs:
/// panel j holds, for each input k, the 32 weights of outputs 32j..32j+31 (zero past the end).
/// `panels` holds `ek_panel_floats(inputs, outputs)` floats. The AVX-512 and AVX2 kernels read the
/// same panels.
long ek_panel_floats(int inputs, int outputs);
void ek_pack_panels(const float *weight, int inputs, int outputs, float *panels);

/// output[m][n] = bias[n] + sum_k input[m][k] weight[n][k], from the packed panels: no packing
/// per call (OpenBLAS packs the whole weight on every call, most of a short text's forward pass),
/// rows in blocks that stay in cache. `stride` is the distance between output rows. `kernels`
/// is what the model was packed for (`ek_model_kernels` then): it keeps running on them whatever
/// level tests set later; the AVX-512 and AVX2 kernels give the same sums, to the bit (FMAs in
/// the same order), the portable C ones (a CPU with neither) nearly.
void ek_linear_panels_on(int kernels, const float *input, int rows, int inputs, const float *panels, const float *bias,
                         int outputs, float *output, int stride);
/// The same on the kernels `ek_model_kernels` names now.
void ek_linear_panels(const float *input, int rows, int inputs, const float *panels, const float *bias, int outputs,
                     float *output, int stride);

/// Whether `ek_linear_bf16` runs here: AMX tiles with bfloat16 (Sapphire Rapids and later), and
/// the kernel's permission to use them (asked once).
int ek_amx_available(void);

/// Whether a layer of this shape runs on AMX (inputs and outputs multiples of 32).
int ek_bf16_shape_supported(int inputs, int outputs);

/// Packs a PyTorch linear weight into bfloat16 blocks as AMX tiles load them; `panels` holds
/// `ek_bf16_panel_halves(inputs, outputs)` 16-bit values.
long ek_bf16_panel_halves(int inputs, int outputs);
void ek_pack_bf16(const float *weight, int inputs, int outputs, unsigned short *panels);

/// output[m][n] = bias[n] + sum_k input[m][k] weight[n][k] on AMX, inputs and weights rounded to
/// bfloat16 and products summed in float32 (cosine to float32 embeddings above 0.99995). Returns 0,
/// having written nothing, when it cannot run (no AMX, an unsupported shape, no memory).
int ek_linear_bf16(const float *input, int rows, int inputs, const unsigned short *panels, const float *bias, int outputs,
                   float *output, int stride);

/// Tests: 0 uses the best kernels the CPU has, 1 the portable C ones only, 2 at most AVX2 (as on
/// CPUs without AVX-512), 3 AVX-512 without AMX. Set before loading a model (it decides how
/// weights are packed and which kernels run its linear layers: `ek_model_kernels`).
void ek_use_portable_kernels(int level);
/// Whether models loaded from now on are packed for AMX (`ek_use_portable_kernels` sets it); a
/// model already packed for AMX keeps running on it.
void ek_disable_amx(int disabled);

/// The OpenBLAS core type this CPU can run at its best ("SkylakeX", "Haswell"), or NULL when
/// nothing better than OpenBLAS's own choice is known.
const char *ek_best_openblas_core(void);

#endif
