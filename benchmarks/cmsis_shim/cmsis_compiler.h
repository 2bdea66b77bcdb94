/*
 * cmsis_compiler.h - the few CMSIS-Core definitions that CMSIS-DSP's matrix-vector and dot
 * product sources need, for benchmarks/kernels_vs_cmsis.py only (never part of kiloml).
 *
 * The cmsisdsp sdist ships CMSIS-DSP without CMSIS-Core, whose cmsis_compiler.h defines the
 * intrinsics. Here they come from GCC's arm_acle.h (one instruction each) on cores with the
 * DSP extension; __SSAT, __USAT, __ROR and __CLZ exist on every Armv7-M core. On cores without
 * the DSP extension (Cortex-M3) CMSIS-DSP's own dsp/none.h supplies C versions of the DSP
 * intrinsics, as it does with CMSIS-Core.
 */
#ifndef KILOML_BENCH_CMSIS_COMPILER_H
#define KILOML_BENCH_CMSIS_COMPILER_H

#include <stdint.h>
#include <arm_acle.h>

#define __ASM __asm
#define __INLINE inline
#define __STATIC_INLINE static inline
#define __STATIC_FORCEINLINE static inline __attribute__((always_inline))
#define __ALIGNED(x) __attribute__((aligned(x)))
#define __WEAK __attribute__((weak))
#define __PACKED __attribute__((packed, aligned(1)))
#define __RESTRICT __restrict

#define __SSAT(value, bits) __ssat((value), (bits))
#define __USAT(value, bits) __usat((value), (bits))

__STATIC_FORCEINLINE uint32_t __ROR(uint32_t value, uint32_t shift)
{
    shift %= 32u;
    return shift == 0u ? value : (value >> shift) | (value << (32u - shift));
}

__STATIC_FORCEINLINE uint8_t __CLZ(uint32_t value)
{
    return value == 0u ? 32u : (uint8_t)__builtin_clz(value);
}

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define __SMLAD(a, b, acc) ((uint32_t)__smlad((int32_t)(a), (int32_t)(b), (int32_t)(acc)))
#define __SMLADX(a, b, acc) ((uint32_t)__smladx((int32_t)(a), (int32_t)(b), (int32_t)(acc)))
#define __SMLSDX(a, b, acc) ((uint32_t)__smlsdx((int32_t)(a), (int32_t)(b), (int32_t)(acc)))
#define __SMLALD(a, b, acc) ((uint64_t)__smlald((int32_t)(a), (int32_t)(b), (int64_t)(acc)))
#define __SMLALDX(a, b, acc) ((uint64_t)__smlaldx((int32_t)(a), (int32_t)(b), (int64_t)(acc)))
#define __SMUAD(a, b) ((uint32_t)__smuad((int32_t)(a), (int32_t)(b)))
#define __SMUADX(a, b) ((uint32_t)__smuadx((int32_t)(a), (int32_t)(b)))
#define __SMUSD(a, b) ((uint32_t)__smusd((int32_t)(a), (int32_t)(b)))
#define __SMUSDX(a, b) ((uint32_t)__smusdx((int32_t)(a), (int32_t)(b)))
#define __SXTB16(a) ((uint32_t)__sxtb16((int32_t)(a)))
#define __QADD(a, b) __qadd((a), (b))
#define __QSUB(a, b) __qsub((a), (b))
#define __QADD8(a, b) ((uint32_t)__qadd8((int32_t)(a), (int32_t)(b)))
#define __QSUB8(a, b) ((uint32_t)__qsub8((int32_t)(a), (int32_t)(b)))
#define __QADD16(a, b) ((uint32_t)__qadd16((int32_t)(a), (int32_t)(b)))
#define __QSUB16(a, b) ((uint32_t)__qsub16((int32_t)(a), (int32_t)(b)))
#define __SHADD16(a, b) ((uint32_t)__shadd16((int32_t)(a), (int32_t)(b)))
#define __SHSUB16(a, b) ((uint32_t)__shsub16((int32_t)(a), (int32_t)(b)))
#define __QASX(a, b) ((uint32_t)__qasx((int32_t)(a), (int32_t)(b)))
#define __QSAX(a, b) ((uint32_t)__qsax((int32_t)(a), (int32_t)(b)))
#define __SHASX(a, b) ((uint32_t)__shasx((int32_t)(a), (int32_t)(b)))
#define __SHSAX(a, b) ((uint32_t)__shsax((int32_t)(a), (int32_t)(b)))
/* PKHBT / PKHTB: no ACLE intrinsic; GCC emits the instruction for these expressions. */
#define __PKHBT(a, b, shift) ((int32_t)(((uint32_t)(a) & 0x0000FFFFu) | \
                                        (((uint32_t)(b) << (shift)) & 0xFFFF0000u)))
#define __PKHTB(a, b, shift) ((int32_t)(((uint32_t)(a) & 0xFFFF0000u) | \
                                        (((uint32_t)(b) >> (shift)) & 0x0000FFFFu)))
__STATIC_FORCEINLINE int32_t __SMMLA(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)(((int64_t)a * b + ((int64_t)acc << 32)) >> 32);
}
#endif

#endif /* KILOML_BENCH_CMSIS_COMPILER_H */
