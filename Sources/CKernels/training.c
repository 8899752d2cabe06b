#include "CKernels.h"
#include "kernels_common.h"

#include <math.h>
#include <string.h>

// The training pass's elementwise kernels (forward with the statistics the backward pass needs, the
// backward ops, AdamW). As in elementwise.c: cloned for AVX-512 and AVX2+FMA and picked at load time,
// reductions allowed to reassociate (summation order only). GradientCheckTests and TrainingTests hold
// the results to finite differences and to the Swift reference ops.

static inline float gelu_tanh(float v) {
    const float s = 0.7978845608028654f;   // √(2/π)
    return 1.0f - 2.0f / (fast_exp(2.0f * s * (v + 0.044715f * v * v * v)) + 1.0f);
}

TOV_CLONES void tov_gelu_forward(float *out, const float *inp, size_t count) {
    for (size_t i = 0; i < count; i++) {
        const float v = inp[i];
        out[i] = 0.5f * v * (1.0f + gelu_tanh(v));
    }
}

TOV_CLONES void tov_gelu_backward(float *dinp, const float *inp, const float *dout, size_t count) {
    const float s = 0.7978845608028654f;
    for (size_t i = 0; i < count; i++) {
        const float x = inp[i], x2 = x * x;
        const float t = gelu_tanh(x);
        const float local = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * s * (1.0f + 0.134145f * x2);
        dinp[i] = local * dout[i];
    }
}

TOV_CLONES void tov_layernorm_forward_stats(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                                            const float *bias, int N, int C) {
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
        mean[n] = m;
        rstd[n] = s;
    }
}

TOV_CLONES void tov_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                                       const float *weight, const float *mean, const float *rstd, int N, int C) {
#pragma clang fp reassociate(on)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
        float *dx = dinp + (size_t)n * C;
        const float m = mean[n], s = rstd[n];
        float dnormMean = 0, dnormNormMean = 0;
        for (int i = 0; i < C; i++) {
            const float norm = (x[i] - m) * s;
            const float dnorm = weight[i] * dy[i];
            dnormMean += dnorm;
            dnormNormMean += dnorm * norm;
        }
        dnormMean /= (float)C;
        dnormNormMean /= (float)C;
        for (int i = 0; i < C; i++) {
            const float norm = (x[i] - m) * s;
            const float dnorm = weight[i] * dy[i];
            dbias[i] += dy[i];
            dweight[i] += norm * dy[i];
            dx[i] += (dnorm - dnormMean - norm * dnormNormMean) * s;
        }
    }
}

TOV_CLONES void tov_column_sums_add(float *sums, const float *rows, int N, int C) {
    for (int n = 0; n < N; n++) {
        const float *r = rows + (size_t)n * C;
        for (int i = 0; i < C; i++) sums[i] += r[i];
    }
}

TOV_CLONES void tov_add(float *out, const float *a, const float *b, size_t count) {
    for (size_t i = 0; i < count; i++) out[i] = a[i] + b[i];
}

TOV_CLONES void tov_add_inplace(float *out, const float *a, size_t count) {
    for (size_t i = 0; i < count; i++) out[i] += a[i];
}

TOV_CLONES void tov_softmax_backward_inplace(float *d, const float *p, int count) {
#pragma clang fp reassociate(on)
    float dot = 0;
    for (int j = 0; j < count; j++) dot += p[j] * d[j];
    for (int j = 0; j < count; j++) d[j] = p[j] * (d[j] - dot);
}

TOV_CLONES void tov_block_sum_squares(const float *x, size_t count, float *blocks) {
#pragma clang fp reassociate(on)
    // Float sums of 4,096-element blocks (vectorised); the caller gathers them in double, in order,
    // so a split of x at block boundaries across threads gives the same norm to the bit.
    for (size_t start = 0, b = 0; start < count; start += TOV_SUM_SQUARES_BLOCK, b++) {
        const size_t end = start + TOV_SUM_SQUARES_BLOCK < count ? start + TOV_SUM_SQUARES_BLOCK : count;
        float block = 0;
        for (size_t i = start; i < end; i++) block += x[i] * x[i];
        blocks[b] = block;
    }
}

TOV_CLONES void tov_adamw(float *p, const float *g, float *m, float *v, size_t count, float lr, float beta1, float beta2,
                          float eps, float decay, float clip, float correction1, float correction2) {
    for (size_t i = 0; i < count; i++) {
        const float grad = g[i] * clip;
        m[i] = beta1 * m[i] + (1 - beta1) * grad;
        v[i] = beta2 * v[i] + (1 - beta2) * grad * grad;
        const float mHat = m[i] / correction1;
        const float vHat = v[i] / correction2;
        p[i] -= lr * (mHat / (sqrtf(vHat) + eps) + decay * p[i]);
    }
}
