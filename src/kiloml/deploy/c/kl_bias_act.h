/*
 * kl_bias_act.h - the output stage of the convolution kernels: a rescaled int32 sum plus the
 * bias, clamped by the fused activation into int16.
 *
 *   y = clamp(acc + shift_round(b, bias.shift), act_min, act_max)
 *
 * acc int32 in Q(out) (a sum already rescaled), b int8/int16 in Q(b) with
 * bias.shift = b - out, act_min <= act_max int16 (ReLU: 0 and 32767). Numpy twin:
 * kiloml.ops.bias_act.
 *
 * Exactness: the reference computes acc + b in int64. The fast path runs when
 * -16 <= bias.shift <= 30, where the rescaled bias fits int32 (|b| <= 2^15, so
 * |b * 2^16| <= 2^31 and a right shift only shrinks it); then acc + b is added with int32
 * saturation (QADD where the DSP extension has it), which changes nothing after the clamp:
 * act_min and act_max lie inside int32, so clamp(sat32(v)) = clamp(v).
 */
#ifndef KL_BIAS_ACT_H
#define KL_BIAS_ACT_H

#include <stdint.h>

#include "kl_fixed.h"
#include "kl_matvec.h"

#if !defined(KL_REFERENCE) && defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define KL_BIAS_ACT_QADD 1
#else
#define KL_BIAS_ACT_QADD 0
#endif

/* clamp(v, act_min, act_max). */
static inline int16_t kl_clamp_s16(int32_t v, int16_t act_min, int16_t act_max)
{
    return (int16_t)(v < act_min ? act_min : (v > act_max ? act_max : v));
}

/* clamp(acc + bias, act_min, act_max) for one value; bias already rescaled, exact int64. */
static inline int16_t kl_bias_act_one(int32_t acc, int64_t bias, int16_t act_min,
                                      int16_t act_max)
{
    int64_t value = (int64_t)acc + bias;
    if (value < act_min) {
        return act_min;
    }
    if (value > act_max) {
        return act_max;
    }
    return (int16_t)value;
}

/* clamp(acc + bias, act_min, act_max) for a bias that fits int32. */
static inline int16_t kl_bias_act_s32(int32_t acc, int32_t bias, int16_t act_min,
                                      int16_t act_max)
{
#if KL_BIAS_ACT_QADD
    return kl_clamp_s16(__qadd(acc, bias), act_min, act_max);
#else
    return kl_clamp_s16(kl_sat32_add(acc, bias), act_min, act_max);
#endif
}

/* Whether the fast path holds for this bias (see the top of the file). */
static inline int kl_bias_fits_s32(const kl_vector_t *bias)
{
#ifdef KL_REFERENCE
    (void)bias;
    return 0;
#else
    return bias->shift >= -16 && bias->shift <= 30;
#endif
}

/* Element i of an int8 (bits 8) or int16 bias rescaled by shift in 32 bits: a rounding right
 * shift when right is 1 (1 <= shift <= 30), else a multiplication by 2^-shift (-16 <= shift
 * <= 0). bits and right are constants where this is inlined. */
KL_ALWAYS_INLINE int32_t kl_bias_s32(const void *values, int bits, uint32_t i, int shift,
                                     int right)
{
    int32_t value = bits == 8 ? ((const int8_t *)values)[i] : ((const int16_t *)values)[i];
    if (right) {
        return (value + ((int32_t)1 << (shift - 1))) >> shift;
    }
    return value * ((int32_t)1 << -shift);
}

/* The loop of kl_bias_act_s32_s16 with the bias's width and shift direction fixed. */
KL_ALWAYS_INLINE void kl_bias_act_loop(const int32_t *acc, const void *values, int bits,
                                       int shift, int right, uint16_t count, int16_t act_min,
                                       int16_t act_max, int16_t *y)
{
    uint32_t i;
    for (i = 0; i < count; i++) {
        y[i] = kl_bias_act_s32(acc[i], kl_bias_s32(values, bits, i, shift, right), act_min,
                               act_max);
    }
}

/* y[i] = clamp(acc[i] + bias[i], act_min, act_max) for the count values of one time step. */
static inline void kl_bias_act_s32_s16(const int32_t *acc, const kl_vector_t *bias,
                                       uint16_t count, int16_t act_min, int16_t act_max,
                                       int16_t *y)
{
    const int shift = bias->shift;
    const void *values = bias->values;
    uint16_t i;
    if (kl_bias_fits_s32(bias)) {
        if (bias->value_bits == 8 && shift > 0) {
            kl_bias_act_loop(acc, values, 8, shift, 1, count, act_min, act_max, y);
        } else if (bias->value_bits == 8) {
            kl_bias_act_loop(acc, values, 8, shift, 0, count, act_min, act_max, y);
        } else if (shift > 0) {
            kl_bias_act_loop(acc, values, 16, shift, 1, count, act_min, act_max, y);
        } else {
            kl_bias_act_loop(acc, values, 16, shift, 0, count, act_min, act_max, y);
        }
        return;
    }
    for (i = 0; i < count; i++) {
        y[i] = kl_bias_act_one(acc[i], kl_vector_get(bias, i), act_min, act_max);
    }
}

#endif /* KL_BIAS_ACT_H */
