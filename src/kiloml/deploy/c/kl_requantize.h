/*
 * kl_requantize.h - the output stage of the int8 image convolutions: an int32 sum plus an
 * int32 bias, rescaled per output channel by a fixed-point multiplier and a shift, clamped by
 * the fused activation into int8.
 *
 *   acc = sat32(sum + bias[o])
 *   y   = clamp(shift_round(acc * mult[o], shift[o]), act_min, act_max)
 *
 * sum int32 of int8 weights (one real scale s_o per output channel) times the inputs in
 * Q(in); bias[o] int32 in the scale of the sums (s_o * 2^-in); mult[o] * 2^-shift[o] =
 * s_o * 2^(out - in), mult int32, shift 1 .. 62; act_min <= act_max int8. |acc * mult| < 2^62,
 * so the product and its rounding (half up) are exact in int64 (kl_requantize_s64, the
 * reference).
 *
 * Fast path (shift > 32, the usual case: the factor is below 2^-1): with H the high word of
 * the product, (acc * mult + 2^(shift-1)) >> shift = (H + 2^(shift-33)) >> (shift - 32)
 * exactly (the low word only adds a fraction below one to an integer numerator), all in
 * 32 bits (|H| < 2^30); acc is a saturating 32-bit add (QADD where the DSP extension has it).
 * Numpy twin: kiloml.ops.requantize.
 */
#ifndef KL_REQUANTIZE_H
#define KL_REQUANTIZE_H

#include <stdint.h>

#include "kl_fixed.h"

#if !defined(KL_REFERENCE) && defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define KL_REQUANTIZE_QADD 1
#else
#define KL_REQUANTIZE_QADD 0
#endif

/* The per-channel constants of one output channel, read once per channel; high is 1 when
 * the fast path holds (never in -DKL_REFERENCE builds). */
typedef struct {
    int32_t bias;
    int32_t mult;
    int shift;
    int high;
    int32_t round_high; /* 2^(shift - 33) when high */
} kl_channel_t;

/* Channel o of the arrays bias, mult and shift (KL_CONST). */
static inline kl_channel_t kl_channel(const int32_t *bias, const int32_t *mult,
                                      const int8_t *shift, uint32_t o)
{
    kl_channel_t ch;
    ch.bias = (int32_t)KL_READ_U32(&bias[o]);
    ch.mult = (int32_t)KL_READ_U32(&mult[o]);
    ch.shift = KL_READ_S8(&shift[o]);
#ifdef KL_REFERENCE
    ch.high = 0;
#else
    ch.high = ch.shift > 32;
#endif
    ch.round_high = ch.high ? (int32_t)1 << (ch.shift - 33) : 0;
    return ch;
}

/* shift_round(sat32(sum + bias) * mult, shift), before the clamp, exact in int64. */
static inline int64_t kl_requantize_s64(int32_t sum, const kl_channel_t *ch)
{
    const int32_t acc = kl_sat32((int64_t)sum + ch->bias);
    const int64_t product = (int64_t)acc * ch->mult;
    return (product + ((int64_t)1 << (ch->shift - 1))) >> ch->shift;
}

/* The same value in 32 bits for a channel whose fast path holds (ch->high). */
static inline int32_t kl_requantize_high(int32_t sum, const kl_channel_t *ch)
{
#if KL_REQUANTIZE_QADD
    const int32_t acc = __qadd(sum, ch->bias);
#else
    const int32_t acc = kl_sat32_add(sum, ch->bias);
#endif
    const int32_t high = (int32_t)(((int64_t)acc * ch->mult) >> 32);
    return (high + ch->round_high) >> (ch->shift - 32);
}

/* clamp(v, act_min, act_max) into int8. */
static inline int8_t kl_clamp_s8(int64_t v, int8_t act_min, int8_t act_max)
{
    return (int8_t)(v < act_min ? act_min : (v > act_max ? act_max : v));
}

/* clamp(v, act_min, act_max) into int8, for an int32 v. */
static inline int8_t kl_clamp_s8_s32(int32_t v, int8_t act_min, int8_t act_max)
{
    return (int8_t)(v < act_min ? act_min : (v > act_max ? act_max : v));
}

/* The output value of a sum: requantized and clamped (the fast path when it holds). */
static inline int8_t kl_requantize_clamp(int32_t sum, const kl_channel_t *ch, int8_t act_min,
                                         int8_t act_max)
{
    if (ch->high) {
        return kl_clamp_s8_s32(kl_requantize_high(sum, ch), act_min, act_max);
    }
    return kl_clamp_s8(kl_requantize_s64(sum, ch), act_min, act_max);
}

#endif /* KL_REQUANTIZE_H */
