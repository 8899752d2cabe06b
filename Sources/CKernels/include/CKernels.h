#ifndef TOVD_CKERNELS_H
#define TOVD_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

// bf16 linear layers for the opt-in scoring path (docs/performance.md, "bf16 scoring").
//
// out (N, OC) = inp (N, C) · Wᵀ (+ out when accumulate), W (OC, C) row-major as the model stores it.
// W is packed once per model into panels of TOV_BF16_PANEL output columns; inside a panel, for every
// pair of input channels (k, k + 1), the TOV_BF16_PANEL pairs (W[o][k], W[o][k + 1]) in bf16: the
// operand order of AVX-512 BF16's VDPBF16PS, which multiplies bf16 pairs and accumulates in fp32.
// Inputs are rounded to bf16 (round to nearest even) per call; products and sums are fp32.

#define TOV_BF16_PANEL 64

/// uint16 elements of W packed for (OC, C): OC rounded up to the panel, C up to even.
size_t tov_bf16_packed_count(int OC, int C);
/// uint16 elements of the kernel's input scratch for rows of C channels (one row block, any N).
size_t tov_bf16_scratch_count(int C);

/// Packs W (OC, C) into `packed` (tov_bf16_packed_count elements), zero-padded. Portable.
void tov_bf16_pack(uint16_t *packed, const float *W, int OC, int C);

/// Packs Aᵀ, A (C, OC) row-major, as tov_bf16_pack packs an (OC, C) matrix: the weight operand of an
/// input-gradient GEMM, dinp (N, C) = dout (N, OC) · W (OC, C), is Wᵀ. Portable.
void tov_bf16_pack_transposed(uint16_t *packed, const float *A, int OC, int C);

/// The AVX-512 BF16 kernel. Call only where the CPU has avx512_bf16 (checked by the caller at run time;
/// the rest of the binary is built for the baseline ISA). `scratch`: tov_bf16_scratch_count(C) elements.
void tov_bf16_gemm_avx512(float *out, const float *inp, int N, int C, const uint16_t *packed, int OC,
                          int accumulate, uint16_t *scratch);

/// The same arithmetic in portable C (bf16-rounded operands, fp32 products and sums): the reference the
/// AVX-512 kernel is tested against on machines that have it, and the packing is tested on all.
void tov_bf16_gemm_reference(float *out, const float *inp, int N, int C, const uint16_t *packed, int OC,
                             int accumulate);

/// fp32 → bf16, round to nearest even (NaN stays NaN). Exposed for tests.
uint16_t tov_bf16_from_float(float value);
float tov_bf16_to_float(uint16_t value);

// Elementwise kernels of the scoring pass (elementwise.c), cloned per ISA and picked at load time.

/// x = GELU(x) in place, GPT-2's tanh form.
void tov_gelu_inplace(float *x, size_t count);
/// −log softmax(row)[target] without writing probabilities.
float tov_negative_log_softmax(const float *row, int count, int target);
/// Softmax of `count` values in place.
void tov_softmax_inplace(float *row, int count);
/// LayerNorm of N rows of C (ε = 1e-5); the scoring pass needs no mean/rstd.
void tov_layernorm_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int C);

// Training kernels (training.c), cloned per ISA like the scoring pass's.

/// out = GELU(inp) (GPT-2's tanh form), out of place: the backward pass reads inp again.
void tov_gelu_forward(float *out, const float *inp, size_t count);
/// dinp = dout · GELU'(inp) (written, not accumulated).
void tov_gelu_backward(float *dinp, const float *inp, const float *dout, size_t count);
/// LayerNorm of N rows of C (ε = 1e-5) that also stores each row's mean and 1/σ for the backward pass.
void tov_layernorm_forward_stats(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                                 const float *bias, int N, int C);
/// Accumulates LayerNorm's gradients into dinp (N, C), dweight (C), dbias (C).
void tov_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                            const float *weight, const float *mean, const float *rstd, int N, int C);
/// sums[i] += Σ_n rows[n][i] (a bias gradient).
void tov_column_sums_add(float *sums, const float *rows, int N, int C);
/// out = a + b.
void tov_add(float *out, const float *a, const float *b, size_t count);
/// out += a.
void tov_add_inplace(float *out, const float *a, size_t count);
/// d = p ⊙ (d − p·d): softmax's backward for one row of probabilities p, in place over d.
void tov_softmax_backward_inplace(float *d, const float *p, int count);
/// The block length of ``tov_block_sum_squares``.
#define TOV_SUM_SQUARES_BLOCK 4096
/// blocks[b] = Σ x² over x[b·4096 ..< (b+1)·4096] (the last block may be short): ⌈count/4096⌉ floats,
/// which the caller sums in double, in order, for a norm over millions of terms.
void tov_block_sum_squares(const float *x, size_t count, float *blocks);
/// One AdamW step over `count` parameters with gradient scale `clip` and bias corrections 1 − β^t.
void tov_adamw(float *p, const float *g, float *m, float *v, size_t count, float lr, float beta1, float beta2,
               float eps, float decay, float clip, float correction1, float correction2);

#endif
