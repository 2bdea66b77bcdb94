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
 * so the product and its rounding (half up) are exact in int64. Numpy twin:
 * kiloml.ops.requantize.
 */
#ifndef KL_REQUANTIZE_H
#define KL_REQUANTIZE_H

#include <stdint.h>

#include "kl_fixed.h"

/* The per-channel constants of one output channel, read once per channel. */
typedef struct {
    int32_t bias;
    int32_t mult;
    int shift;
} kl_channel_t;

/* Channel o of the arrays bias, mult and shift (KL_CONST). */
static inline kl_channel_t kl_channel(const int32_t *bias, const int32_t *mult,
                                      const int8_t *shift, uint32_t o)
{
    kl_channel_t ch;
    ch.bias = (int32_t)KL_READ_U32(&bias[o]);
    ch.mult = (int32_t)KL_READ_U32(&mult[o]);
    ch.shift = KL_READ_S8(&shift[o]);
    return ch;
}

/* shift_round(sat32(sum + bias) * mult, shift), before the clamp. */
static inline int64_t kl_requantize_s64(int32_t sum, const kl_channel_t *ch)
{
    const int32_t acc = kl_sat32((int64_t)sum + ch->bias);
    const int64_t product = (int64_t)acc * ch->mult;
    return (product + ((int64_t)1 << (ch->shift - 1))) >> ch->shift;
}

/* clamp(v, act_min, act_max) into int8. */
static inline int8_t kl_clamp_s8(int64_t v, int8_t act_min, int8_t act_max)
{
    return (int8_t)(v < act_min ? act_min : (v > act_max ? act_max : v));
}

#endif /* KL_REQUANTIZE_H */
