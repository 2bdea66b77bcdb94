/*
 * kl_activation.h - integer non-linearities: int16 input in Q(frac_bits), int16 output.
 *
 * Bounded functions return Q15 (1.0 saturates to 32767); relu keeps the input's Q-format.
 * tanh interpolates a 129-entry Q15 table of tanh(k/16), k = 0..128, and uses odd symmetry;
 * sigmoid(x) = (1 + tanh(x/2)) / 2 reuses it. Absolute error for inputs in Q0..Q15:
 * below 4.6e-4 (tanh) and 2.5e-4 (sigmoid). quantTanh = clamp(x, -1, 1) and
 * quantSigm = clamp((x + 1) / 2, 0, 1) are exact up to rounding to Q15.
 * Numpy twin: kiloml.ops.activation.
 */
#ifndef KL_ACTIVATION_H
#define KL_ACTIVATION_H

#include <stdint.h>

#include "kl_constants.h"
#include "kl_fixed.h"

/* The kinds KL_SIGMOID, KL_TANH, KL_QUANT_SIGM, KL_QUANT_TANH and KL_RELU (kl_constants.h,
 * shared with kiloml.ops.constants.ACTIVATION_IDS). */
typedef uint8_t kl_activation_t;

/* Q15 tanh(k/16) for k = 0..128 (the last entry saturated to 32767). */
extern const int16_t kl_tanh_table_q15[KL_TANH_TABLE_SIZE] KL_CONST;

/* tanh(x), x in Q(frac_bits) with 0 <= frac_bits <= 24; Q15 result in [-32767, 32767]. */
int16_t kl_tanh_s16_q15(int16_t x, int frac_bits);

/* sigmoid(x), x in Q(frac_bits) with 0 <= frac_bits <= 24; Q15 result in [0, 32767]. */
int16_t kl_sigmoid_s16_q15(int16_t x, int frac_bits);

/* clamp(x, -1, 1), x in Q(frac_bits); Q15 result in [-32768, 32767]. */
int16_t kl_quant_tanh_s16_q15(int16_t x, int frac_bits);

/* clamp((x + 1) / 2, 0, 1), x in Q(frac_bits); Q15 result in [0, 32767]. */
int16_t kl_quant_sigm_s16_q15(int16_t x, int frac_bits);

/* max(x, 0) in the input's Q-format. */
int16_t kl_relu_s16(int16_t x);

/* Dispatch on kind (a kl_activation_t value). */
int16_t kl_activation_s16(uint8_t kind, int16_t x, int frac_bits);

/* An activation of Q(frac_bits) inputs prepared for repeated use: the rescaling of the input
 * that every function above starts with (shift_round(v, s): s = frac_bits - 12 for tanh,
 * frac_bits - 11 for sigmoid, frac_bits - 15 for quantTanh/quantSigm) becomes
 * (v * mul + add) >> rshift, exact in 32 bits for |v| <= 2^15. */
#if defined(__AVR__)
typedef uint8_t kl_plan_shift_t; /* 0..31; one byte in the AVR's 2 KB of RAM */
#else
typedef int32_t kl_plan_shift_t;
#endif
typedef struct {
    int32_t mul;
    int32_t add;
    kl_plan_shift_t rshift;
} kl_activation_plan_t;

/* The plan of kind at Q(frac_bits), 0 <= frac_bits <= 24. */
void kl_activation_prepare(kl_activation_plan_t *plan, uint8_t kind, int frac_bits);

/* tanh of u >= 0 in Q12 as Q15: kl_tanh_table_q15 interpolated linearly. Clamping u to 32767
 * is exact: the table is flat (32767) from entry 127 on. */
static inline int32_t kl_tanh_lookup_fast(int32_t u)
{
    const int16_t *entry;
    int32_t lower;
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT && !defined(KL_REFERENCE)
    u = (int32_t)__usat(u, 15); /* u >= 0 */
#else
    u = u < 32767 ? u : 32767;
#endif
    entry = kl_tanh_table_q15 + (u >> 8);
    lower = KL_READ_S16(&entry[0]);
    return lower + (((KL_READ_S16(&entry[1]) - lower) * (u & 255) + 128) >> 8);
}

/* kl_activation_s16(kind, x, frac_bits) for the plan of (kind, frac_bits), branch-free but
 * for the sign; kind is a constant where this is inlined. */
KL_ALWAYS_INLINE int32_t kl_activation_planned(uint8_t kind, int32_t x,
                                               const kl_activation_plan_t *plan)
{
    int32_t magnitude = x < 0 ? -x : x;
    int32_t t;
    switch (kind) {
    case KL_SIGMOID:
        t = kl_tanh_lookup_fast((magnitude * plan->mul + plan->add) >> plan->rshift);
        return (32768 + (x < 0 ? -t : t)) >> 1;
    case KL_TANH:
        t = kl_tanh_lookup_fast((magnitude * plan->mul + plan->add) >> plan->rshift);
        return x < 0 ? -t : t;
    case KL_QUANT_SIGM:
        t = (((x * plan->mul + plan->add) >> plan->rshift) + 32768) >> 1;
        return t < 0 ? 0 : (t > INT16_MAX ? INT16_MAX : t);
    case KL_QUANT_TANH:
        return kl_sat16_s32((x * plan->mul + plan->add) >> plan->rshift);
    default:
        return x > 0 ? x : 0;
    }
}

#endif /* KL_ACTIVATION_H */
