#include "CKernels.h"
#include "kernels_common.h"

#include <math.h>
#include <string.h>

// The scoring pass's elementwise kernels. Swift's build targets the baseline x86-64 (SSE2) and LLVM
// does not vectorise float reductions without reassociation, so in Swift these ran 4-wide or scalar
// (GELU a fifth of a small-surrogate scoring profile: the in-place call defeated the vectoriser's
// alias check). Here each kernel is cloned for AVX-512 and AVX2+FMA, picked by the loader at run time
// (`target_clones`), and reductions are allowed to reassociate (`#pragma clang fp`), which changes the
// summation order only: ScoringPassTests hold the results to the Swift reference ops.

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
