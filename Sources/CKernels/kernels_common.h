// What the elementwise kernels of scoring (elementwise.c) and training (training.c) share: the clone
// attribute and fast_exp. Private to the target (not in include/).
#ifndef TOV_KERNELS_COMMON_H
#define TOV_KERNELS_COMMON_H

#include <stdint.h>
#include <string.h>

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

#endif
