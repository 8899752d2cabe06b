#include "CKernels.h"

#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

// Row blocks: MR rows × one 64-column panel per micro-kernel call keeps 4·MR accumulators, 4 panel
// vectors and a broadcast in AVX-512's 32 registers; NB rows of bf16 input (≤ 96 · 1024 · 2 bytes)
// stay in L2 while every panel streams past them.
enum { MR = 6, NB = 96 };

static inline int round_up(int value, int multiple) { return (value + multiple - 1) / multiple * multiple; }

size_t tov_bf16_packed_count(int OC, int C) { return (size_t)round_up(OC, TOV_BF16_PANEL) * (size_t)round_up(C, 2); }
size_t tov_bf16_scratch_count(int C) { return (size_t)NB * (size_t)round_up(C, 2) + 32; }

uint16_t tov_bf16_from_float(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x40);   // quiet NaN
    bits += 0x7fffu + ((bits >> 16) & 1);
    return (uint16_t)(bits >> 16);
}

float tov_bf16_to_float(uint16_t value) {
    uint32_t bits = (uint32_t)value << 16;
    float result;
    memcpy(&result, &bits, sizeof result);
    return result;
}

void tov_bf16_pack(uint16_t *packed, const float *W, int OC, int C) {
    const int pairs = round_up(C, 2) / 2, panels = round_up(OC, TOV_BF16_PANEL) / TOV_BF16_PANEL;
    for (int p = 0; p < panels; p++)
        for (int kp = 0; kp < pairs; kp++) {
            uint16_t *dst = packed + ((size_t)p * pairs + kp) * 2 * TOV_BF16_PANEL;
            for (int j = 0; j < TOV_BF16_PANEL; j++) {
                const int o = p * TOV_BF16_PANEL + j;
                for (int t = 0; t < 2; t++) {
                    const int k = 2 * kp + t;
                    dst[2 * j + t] = (o < OC && k < C) ? tov_bf16_from_float(W[(size_t)o * C + k]) : 0;
                }
            }
        }
}

void tov_bf16_pack_transposed(uint16_t *packed, const float *A, int OC, int C) {
    // B = Aᵀ with A (C, OC) row-major: B[o][k] = A[k][o]. A panel's 64 columns are 64 consecutive floats
    // of rows k and k + 1 of A, so every read is contiguous (training packs each step's weights this way).
    const int pairs = round_up(C, 2) / 2, panels = round_up(OC, TOV_BF16_PANEL) / TOV_BF16_PANEL;
    for (int p = 0; p < panels; p++)
        for (int kp = 0; kp < pairs; kp++) {
            uint16_t *dst = packed + ((size_t)p * pairs + kp) * 2 * TOV_BF16_PANEL;
            for (int t = 0; t < 2; t++) {
                const int k = 2 * kp + t;
                const float *row = A + (size_t)k * OC + (size_t)p * TOV_BF16_PANEL;
                for (int j = 0; j < TOV_BF16_PANEL; j++) {
                    const int o = p * TOV_BF16_PANEL + j;
                    dst[2 * j + t] = (o < OC && k < C) ? tov_bf16_from_float(row[j]) : 0;
                }
            }
        }
}

void tov_bf16_gemm_reference(float *out, const float *inp, int N, int C, const uint16_t *packed, int OC, int accumulate) {
    const int pairs = round_up(C, 2) / 2;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            const int p = o / TOV_BF16_PANEL, j = o % TOV_BF16_PANEL;
            float sum = 0;
            for (int kp = 0; kp < pairs; kp++) {
                const uint16_t *w = packed + ((size_t)p * pairs + kp) * 2 * TOV_BF16_PANEL + 2 * j;
                for (int t = 0; t < 2; t++) {
                    const int k = 2 * kp + t;
                    const float a = k < C ? tov_bf16_to_float(tov_bf16_from_float(inp[(size_t)n * C + k])) : 0;
                    sum += a * tov_bf16_to_float(w[t]);
                }
            }
            float *c = out + (size_t)n * OC + o;
            *c = accumulate ? *c + sum : sum;
        }
}

#if defined(__x86_64__)

#define TOV_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

// Rows of C floats → rows of round_up(C, 2) bf16, zero-padded, 32 channels per instruction.
TOV_AVX512_BF16 static void round_rows(uint16_t *dst, const float *src, int N, int C) {
    const int Cp = round_up(C, 2);
    for (int n = 0; n < N; n++) {
        const float *s = src + (size_t)n * C;
        uint16_t *d = dst + (size_t)n * Cp;
        for (int k = 0; k < Cp; k += 32) {
            const int left = C - k;
            const __mmask16 lo = left >= 16 ? 0xffff : (left > 0 ? (__mmask16)((1u << left) - 1) : 0);
            const __mmask16 hi = left >= 32 ? 0xffff : (left > 16 ? (__mmask16)((1u << (left - 16)) - 1) : 0);
            const __m512 a = _mm512_maskz_loadu_ps(lo, s + k), b = _mm512_maskz_loadu_ps(hi, s + k + 16);
            const __m512i v = (__m512i)_mm512_cvtne2ps_pbh(b, a);
            const int store = Cp - k >= 32 ? 32 : Cp - k;
            _mm512_mask_storeu_epi16(d + k, store == 32 ? 0xffffffffu : (__mmask32)((1u << store) - 1), v);
        }
    }
}

// One micro-kernel per row count, so every accumulator index is a constant and lives in a register.
#define TOV_BF16_KERNEL(R)                                                                                     \
    TOV_AVX512_BF16 static void kernel##R(float *c, size_t ldc, const uint16_t *a, size_t lda,                 \
                                          const uint16_t *b, int pairs, __mmask16 masks[4], int accumulate) {   \
        __m512 acc[R][4];                                                                                      \
        for (int i = 0; i < R; i++)                                                                            \
            for (int j = 0; j < 4; j++) acc[i][j] = _mm512_setzero_ps();                                       \
        for (int kp = 0; kp < pairs; kp++) {                                                                   \
            const uint16_t *bp = b + (size_t)kp * 2 * TOV_BF16_PANEL;                                          \
            const __m512bh b0 = (__m512bh)_mm512_loadu_si512(bp), b1 = (__m512bh)_mm512_loadu_si512(bp + 32);  \
            const __m512bh b2 = (__m512bh)_mm512_loadu_si512(bp + 64), b3 = (__m512bh)_mm512_loadu_si512(bp + 96); \
            for (int i = 0; i < R; i++) {                                                                      \
                int32_t pair;                                                                                  \
                memcpy(&pair, a + i * lda + 2 * kp, sizeof pair);                                              \
                const __m512bh ai = (__m512bh)_mm512_set1_epi32(pair);                                         \
                acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, b0);                                               \
                acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, b1);                                               \
                acc[i][2] = _mm512_dpbf16_ps(acc[i][2], ai, b2);                                               \
                acc[i][3] = _mm512_dpbf16_ps(acc[i][3], ai, b3);                                               \
            }                                                                                                  \
        }                                                                                                      \
        for (int i = 0; i < R; i++)                                                                            \
            for (int j = 0; j < 4; j++) {                                                                      \
                if (!masks[j]) continue;                                                                       \
                float *dst = c + i * ldc + 16 * j;                                                             \
                __m512 v = acc[i][j];                                                                          \
                if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(masks[j], dst));                    \
                _mm512_mask_storeu_ps(dst, masks[j], v);                                                       \
            }                                                                                                  \
    }
TOV_BF16_KERNEL(1)
TOV_BF16_KERNEL(2)
TOV_BF16_KERNEL(3)
TOV_BF16_KERNEL(4)
TOV_BF16_KERNEL(5)
TOV_BF16_KERNEL(6)

TOV_AVX512_BF16 void tov_bf16_gemm_avx512(float *out, const float *inp, int N, int C, const uint16_t *packed, int OC,
                                          int accumulate, uint16_t *scratch) {
    const int Cp = round_up(C, 2), pairs = Cp / 2, panels = round_up(OC, TOV_BF16_PANEL) / TOV_BF16_PANEL;
    for (int n0 = 0; n0 < N; n0 += NB) {
        const int rows = N - n0 < NB ? N - n0 : NB;
        round_rows(scratch, inp + (size_t)n0 * C, rows, C);
        for (int p = 0; p < panels; p++) {
            __mmask16 masks[4];
            for (int j = 0; j < 4; j++) {
                const int left = OC - p * TOV_BF16_PANEL - 16 * j;
                masks[j] = left >= 16 ? 0xffff : (left > 0 ? (__mmask16)((1u << left) - 1) : 0);
            }
            const uint16_t *b = packed + (size_t)p * pairs * 2 * TOV_BF16_PANEL;
            for (int r = 0; r < rows; r += MR) {
                float *c = out + (size_t)(n0 + r) * OC + p * TOV_BF16_PANEL;
                const uint16_t *a = scratch + (size_t)r * Cp;
                switch (rows - r < MR ? rows - r : MR) {
                case 1: kernel1(c, OC, a, Cp, b, pairs, masks, accumulate); break;
                case 2: kernel2(c, OC, a, Cp, b, pairs, masks, accumulate); break;
                case 3: kernel3(c, OC, a, Cp, b, pairs, masks, accumulate); break;
                case 4: kernel4(c, OC, a, Cp, b, pairs, masks, accumulate); break;
                case 5: kernel5(c, OC, a, Cp, b, pairs, masks, accumulate); break;
                default: kernel6(c, OC, a, Cp, b, pairs, masks, accumulate); break;
                }
            }
        }
    }
}

#else

// Not x86-64: no AVX-512 BF16, and ScoringPrecision.isAvailable(.bf16) is false, so this is never
// called; it exists so the package links everywhere.
void tov_bf16_gemm_avx512(float *out, const float *inp, int N, int C, const uint16_t *packed, int OC,
                          int accumulate, uint16_t *scratch) {
    (void)scratch;
    tov_bf16_gemm_reference(out, inp, N, C, packed, OC, accumulate);
}

#endif
