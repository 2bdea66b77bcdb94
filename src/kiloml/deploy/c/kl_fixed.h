/*
 * kl_fixed.h - saturation and power-of-two rescaling for kiloml's integer kernels.
 *
 * A value in Q-format with f fractional bits is stored as round(value * 2^f). Every rescaling
 * is kl_shift_round_s64: shift > 0 is an arithmetic right shift rounding half up,
 * (x + 2^(shift-1)) >> shift; shift < 0 multiplies by 2^-shift (never a left shift of a
 * negative value, which C leaves undefined). Right shifts of negative values rely on the
 * arithmetic shift that GCC and Clang implement on every supported target.
 *
 * The numpy twin is kiloml.ops.fixed; both must stay integer-for-integer identical.
 */
#ifndef KL_FIXED_H
#define KL_FIXED_H

#include <stdint.h>

#include "kl_flash.h"

/* Inlining hints for the kernels (plain C99 elsewhere: the code is correct without them).
 * Coverage builds (-DKL_COVERAGE) drop them, so that gcov counts each branch once per source
 * line instead of once per inlined copy. */
#if defined(__GNUC__) && !defined(KL_COVERAGE)
#define KL_ALWAYS_INLINE static inline __attribute__((always_inline))
#define KL_NOINLINE __attribute__((noinline))
#else
#define KL_ALWAYS_INLINE static inline
#define KL_NOINLINE
#endif

/* Clamp to [-32768, 32767]. */
static inline int16_t kl_sat16(int64_t x)
{
    if (x > INT16_MAX) {
        return INT16_MAX;
    }
    if (x < INT16_MIN) {
        return INT16_MIN;
    }
    return (int16_t)x;
}

/* Clamp to [-2^31, 2^31 - 1]. */
static inline int32_t kl_sat32(int64_t x)
{
    if (x > INT32_MAX) {
        return INT32_MAX;
    }
    if (x < INT32_MIN) {
        return INT32_MIN;
    }
    return (int32_t)x;
}

/* x * 2^-shift, rounding half up when shift > 0; exact when shift <= 0. |shift| < 63. */
static inline int64_t kl_shift_round_s64(int64_t x, int shift)
{
    if (shift > 0) {
        return (x + ((int64_t)1 << (shift - 1))) >> shift;
    }
    if (shift < 0) {
        return x * ((int64_t)1 << -shift);
    }
    return x;
}

/* The same rescaling in 32 bits, for callers that guarantee the int64 result of
 * kl_shift_round_s64 and the rounding term x + 2^(shift-1) fit in int32 (|shift| < 31). */
static inline int32_t kl_shift_round_s32(int32_t x, int shift)
{
    if (shift > 0) {
        return (x + ((int32_t)1 << (shift - 1))) >> shift;
    }
    if (shift < 0) {
        return x * ((int32_t)1 << -shift);
    }
    return x;
}

/* kl_sat16 for an int32 argument (one SSAT on Arm cores that have it). */
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT && !defined(KL_REFERENCE)
#include <arm_acle.h>
static inline int16_t kl_sat16_s32(int32_t x)
{
    return (int16_t)__ssat(x, 16);
}
#else
static inline int16_t kl_sat16_s32(int32_t x)
{
    return (int16_t)(x > INT16_MAX ? INT16_MAX : (x < INT16_MIN ? INT16_MIN : x));
}
#endif

/* kl_shift_round_s64(x, shift) for int32 x and 1 <= shift <= 31, overflow-free for every x:
 * floor(x / 2^shift + 1/2) = floor(x / 2^shift) + bit (shift - 1) of x. */
static inline int32_t kl_round_shift_pos_s32(int32_t x, int shift)
{
    return (x >> shift) + ((x >> (shift - 1)) & 1);
}

/* kl_sat32(a + b) without 64-bit arithmetic (one QADD with the DSP extension). */
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && !defined(KL_REFERENCE)
#include <arm_acle.h>
static inline int32_t kl_sat32_add(int32_t a, int32_t b)
{
    return __qadd(a, b);
}
#else
static inline int32_t kl_sat32_add(int32_t a, int32_t b)
{
    int32_t sum = (int32_t)((uint32_t)a + (uint32_t)b);
    if ((a < 0) == (b < 0) && (sum < 0) != (a < 0)) {
        return a < 0 ? INT32_MIN : INT32_MAX;
    }
    return sum;
}
#endif

#endif /* KL_FIXED_H */
