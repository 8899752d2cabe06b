#include "CKernels.h"

#include <math.h>
#include <string.h>

// The scoring pass's elementwise kernels. Swift's build targets the baseline x86-64 (SSE2) and LLVM
// does not vectorise float reductions without reassociation, so in Swift these ran 4-wide or scalar
// (GELU a fifth of a small-surrogate scoring profile: the in-place call defeated the vectoriser's
// alias check). Here each kernel is cloned for AVX-512 and AVX2+FMA, picked by the loader at run time
// (`target_clones`), and reductions are allowed to reassociate (`#pragma clang fp`), which changes the
// summation order only: ScoringPassTests hold the results to the Swift reference ops.

#if defined(__x86_64__) && defined(__linux__)
#define TOV_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define TOV_CLONES   // one build for the target's own ISA (no ifunc elsewhere)
#endif

// e^x as Surrogate's fastExp (FastMath.swift): n = round(x·log2 e) by the 1.5·2^23 shift, a degree-6
// polynomial for e^r, 2^n in the exponent bits. About 1 ulp over [−87.3, 88.3].
static inline float fast_exp(float x) {
    const float xc = x < -87.3f ? -87.3f : (x > 88.3f ? 88.3f : x);
    const float shifted = xc * 1.44269504f + 12582912.0f;
    const float n = shifted - 12582912.0f;
    float r = xc - n * 0.693359375f;
    r = r - n * -2.1219444e-4f;
    float p = 1.98756915e-4f;
    p = p * r + 1.39819995e-3f;
    p = p * r + 8.3334519e-3f;
    p = p * r + 4.1665796e-2f;
    p = p * r + 0.16666666f;
    p = p * r + 0.5f;
    p = p * r * r + r + 1.0f;
    int32_t bits;
    memcpy(&bits, &shifted, sizeof bits);
    bits = (int32_t)(((uint32_t)bits - 0x4B400000u) << 23) + 0x3F800000;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

TOV_CLONES void tov_gelu_inplace(float *x, size_t count) {
    const float s = 0.7978845608028654f;   // √(2/π)
    for (size_t i = 0; i < count; i++) {
        const float v = x[i];
        const float t = 1.0f - 2.0f / (fast_exp(2.0f * s * (v + 0.044715f * v * v * v)) + 1.0f);
        x[i] = 0.5f * v * (1.0f + t);
    }
}

TOV_CLONES float tov_negative_log_softmax(const float *row, int count, int target) {
#pragma clang fp reassociate(on)
    float m = -INFINITY;
    for (int i = 0; i < count; i++) m = row[i] > m ? row[i] : m;
    float sum = 0;
    for (int i = 0; i < count; i++) sum += fast_exp(row[i] - m);
    return logf(sum) - (row[target] - m);
}

TOV_CLONES void tov_softmax_inplace(float *row, int count) {
#pragma clang fp reassociate(on)
    float m = -INFINITY;
    for (int i = 0; i < count; i++) m = row[i] > m ? row[i] : m;
    float sum = 0;
    for (int i = 0; i < count; i++) {
        const float e = fast_exp(row[i] - m);
        row[i] = e;
        sum += e;
    }
    const float inv = 1.0f / sum;
    for (int i = 0; i < count; i++) row[i] *= inv;
}

TOV_CLONES void tov_layernorm_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int C) {
#pragma clang fp reassociate(on)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *o = out + (size_t)n * C;
        float m = 0;
        for (int i = 0; i < C; i++) m += x[i];
        m /= (float)C;
        float v = 0;
        for (int i = 0; i < C; i++) {
            const float d = x[i] - m;
            v += d * d;
        }
        v /= (float)C;
        const float s = 1.0f / sqrtf(v + 1e-5f);
        for (int i = 0; i < C; i++) o[i] = (x[i] - m) * s * weight[i] + bias[i];
    }
}
