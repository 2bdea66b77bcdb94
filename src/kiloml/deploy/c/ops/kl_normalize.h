/*
 * kl_normalize.h - per-feature input normalisation in integers.
 *
 * For each frame of `features` int16 values x in Q(in):
 *   y[f] = sat16(shift_round((x[f] - mean[f]) * inv_std[f], shift))
 * with mean in Q(in), inv_std = 1/std in its own Q(i) and shift = in + i - out, so y is in
 * Q(out). The product is exact in 32 bits (|x - mean| < 2^16, |inv_std| < 2^15). Numpy twin:
 * kiloml.ops.normalize.normalize_spec.
 */
#ifndef KL_NORMALIZE_H
#define KL_NORMALIZE_H

#include <stdint.h>

#include "kl_fixed.h"

typedef struct {
    const int16_t *mean;    /* [features], Q(in) */
    const int16_t *inv_std; /* [features], 1/std in its own Q */
    uint16_t features;
    int8_t shift;
} kl_normalize_params_t;

/* The exact int64 equation for one frame (what KL_REFERENCE builds run). */
void kl_normalize_frame_reference(const kl_normalize_params_t *p, const int16_t *x,
                                  int16_t *xn);

/* sat16(shift_round(product, shift)) for shift <= 0 or shift >= 32, in 32 bits. */
int16_t kl_normalize_rare(int32_t product, int shift);

/* One frame: xn[0 .. features-1] from x[0 .. features-1]. Inline, so that a recurrent kernel
 * that normalises one frame per step pays no call. The product (x - mean) * inv_std is below
 * 65535 * 32768 < 2^31 in magnitude, so every shift is exact in 32 bits: 1 <= shift <= 31
 * rounds as ((product >> (shift - 1)) + 1) >> 1, which is floor((product + 2^(shift-1)) /
 * 2^shift) without overflow, other shifts take kl_normalize_rare. */
static inline void kl_normalize_frame_s16(const kl_normalize_params_t *p, const int16_t *x,
                                          int16_t *xn)
{
#ifdef KL_REFERENCE
    kl_normalize_frame_reference(p, x, xn);
#else
    const int shift = p->shift;
    const uint32_t features = p->features;
    const int16_t *mean = p->mean;
    const int16_t *inv_std = p->inv_std;
    uint32_t f;
    if (shift >= 1 && shift <= 31) {
        const int half_shift = shift - 1;
        for (f = 0; f < features; f++) {
            int32_t product = ((int32_t)x[f] - KL_READ_S16(&mean[f])) * KL_READ_S16(&inv_std[f]);
            xn[f] = kl_sat16_s32(((product >> half_shift) + 1) >> 1);
        }
    } else {
        for (f = 0; f < features; f++) {
            xn[f] = kl_normalize_rare(((int32_t)x[f] - KL_READ_S16(&mean[f])) *
                                          KL_READ_S16(&inv_std[f]), shift);
        }
    }
#endif
}

/* frames consecutive frames [frames][features]; y may equal x. */
void kl_normalize_s16(const kl_normalize_params_t *p, uint32_t frames, const int16_t *x,
                      int16_t *y);

#endif /* KL_NORMALIZE_H */
