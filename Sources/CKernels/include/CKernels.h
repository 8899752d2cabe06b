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

#endif
