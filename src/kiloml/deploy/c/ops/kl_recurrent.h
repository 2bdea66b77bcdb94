/*
 * kl_recurrent.h - what the gated recurrent kernels (kl_gru.c, kl_lstm.c) share: the blend of
 * two Q15 gate products, biases read in a gate's Q-format, saturating gate inputs, a gate's
 * activation over all units (kl_recurrent.c) and the mean readout. Numpy twin:
 * kiloml.ops.recurrent.
 *
 * Every function here equals the int64 equation in its comment for the inputs stated there;
 * the *_fast variants need constants their *_prepare function accepted (it returns 0
 * otherwise, and the kernels then run their reference loops).
 */
#ifndef KL_RECURRENT_H
#define KL_RECURRENT_H

#include <stdint.h>

#include "kl_activation.h"
#include "kl_constants.h"
#include "kl_fixed.h"
#include "kl_matvec.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && !defined(KL_REFERENCE)
#include <arm_acle.h>
#define KL_RECURRENT_QADD 1
#else
#define KL_RECURRENT_QADD 0
#endif

/* y = p a + q b in Q(state) for p, a, q in Q15 and b in Q(state):
 *   y = sat16(shift_round(p a 2^align_q15 + q b 2^align_state, shift)).
 * The quantizer aligns both products to Q(max(30, 15 + state)), so shift is that minus state
 * and the alignments are at most 15. */
typedef struct {
    uint8_t align_q15;
    uint8_t align_state;
    int8_t shift;
} kl_blend_t;

/* The equation in int64 for |p|, |a|, |q|, |b| <= 2^15 (|p a|, |q b| <= 2^30 are int32) and
 * alignments <= 30. */
static inline int16_t kl_blend_reference(const kl_blend_t *m, int32_t p, int32_t a, int32_t q,
                                         int32_t b)
{
    int64_t sum = (int64_t)(p * a) * ((int64_t)1 << m->align_q15) +
                  (int64_t)(q * b) * ((int64_t)1 << m->align_state);
    return kl_sat16(kl_shift_round_s64(sum, m->shift));
}

/* The blend as one 64-bit sum whose upper word is the result: with X = p a 2^A + q b 2^B and
 * S = shift, shift_round(X, S) = floor((X 2^(32-S) + 2^31) / 2^32) for every S (S <= 0 too:
 * then X 2^-S is an integer and the added half is dropped), and X 2^(32-S) =
 * p a 2^(A+32-S) + q b 2^(B+32-S) is an integer sum when both exponents are >= 0. With both
 * exponents <= 30 each term is below 2^60 in magnitude, so the sum stays in int64. */
typedef struct {
    int32_t scale_q15;   /* 2^(align_q15 + 32 - shift) */
    int32_t scale_state; /* 2^(align_state + 32 - shift) */
} kl_blend_plan_t;

static inline int kl_blend_prepare(kl_blend_plan_t *plan, const kl_blend_t *m)
{
    int e_q15 = m->align_q15 + 32 - m->shift;
    int e_state = m->align_state + 32 - m->shift;
    if (e_q15 < 0 || e_q15 > 30 || e_state < 0 || e_state > 30) {
        return 0;
    }
    plan->scale_q15 = (int32_t)1 << e_q15;
    plan->scale_state = (int32_t)1 << e_state;
    return 1;
}

KL_ALWAYS_INLINE int16_t kl_blend_fast(const kl_blend_plan_t *plan, int32_t p, int32_t a,
                                       int32_t q, int32_t b)
{
    int64_t sum = ((int64_t)1 << 31) + (int64_t)(p * a) * plan->scale_q15 +
                  (int64_t)(q * b) * plan->scale_state;
    return kl_sat16_s32((int32_t)(sum >> 32));
}

/* A bias vector's element v read in its target format, shift_round(v, shift), as
 * (v * mul + add) >> rshift: exact in int32 for |v| <= 2^15 and -14 <= shift <= 30 (the
 * result and every intermediate stay within 2^30). */
typedef struct {
    int32_t mul;
    int32_t add;
    int32_t rshift;
} kl_bias_plan_t;

static inline int kl_bias_prepare(kl_bias_plan_t *plan, const kl_vector_t *v)
{
    const int shift = v->shift;
    if (shift < -14 || shift > 30) {
        return 0;
    }
    plan->mul = shift > 0 ? 1 : (int32_t)1 << -shift;
    plan->add = shift > 0 ? (int32_t)1 << (shift - 1) : 0;
    plan->rshift = shift > 0 ? shift : 0;
    return 1;
}

/* sat16(a + b) for any int32 a, b. With the DSP extension QADD saturates the sum to int32
 * first, which cannot change the int16 result (a sum beyond int32 saturates to the same
 * sign); otherwise the sum is formed in int64. */
KL_ALWAYS_INLINE int16_t kl_sat16_add_s32(int32_t a, int32_t b)
{
#if KL_RECURRENT_QADD
    return kl_sat16_s32(__qadd(a, b));
#else
    return kl_sat16((int64_t)a + b);
#endif
}

/* sat16(a + b + c) for any int32 a and |b|, |c| <= 2^30. With QADD: if a + b saturates, its
 * true value is at least 2^31 in magnitude, and adding c (|c| <= 2^30) leaves both the true and
 * the saturated sum beyond 2^30 with that sign, so both give the same int16. */
KL_ALWAYS_INLINE int16_t kl_sat16_add3_s32(int32_t a, int32_t b, int32_t c)
{
#if KL_RECURRENT_QADD
    return kl_sat16_s32(__qadd(__qadd(a, b), c));
#else
    return kl_sat16((int64_t)a + b + c);
#endif
}

/* One gate of every unit on the fast path, in place: pre[j] = act(sat16(pre[j] + b[j])) for
 * j < hidden with act sigmoid or tanh of Q(plan) inputs (kl_activation_planned), the Q15 result
 * in pre's int32 slot. Each bias value v is read as (v * mul + add) >> rshift with bias_plan
 * from kl_bias_prepare. */
void kl_gate_sigmoid_s32(int32_t *pre, const kl_vector_t *bias, const kl_bias_plan_t *bias_plan,
                         const kl_activation_plan_t *plan, uint32_t hidden);
void kl_gate_tanh_s32(int32_t *pre, const kl_vector_t *bias, const kl_bias_plan_t *bias_plan,
                      const kl_activation_plan_t *plan, uint32_t hidden);

/* The state at the start of a sequence: h = 0 and, for the mean readout, sum = 0. */
static inline void kl_recurrent_start(uint8_t readout, uint16_t hidden, int16_t *h, int32_t *sum)
{
    uint16_t j;
    for (j = 0; j < hidden; j++) {
        h[j] = 0;
        if (readout == KL_READOUT_MEAN) {
            sum[j] = 0;
        }
    }
}

/* After a step: sum += h (mean readout). Exact in int32: at most 65535 steps of |h| <= 2^15. */
static inline void kl_recurrent_accumulate(uint8_t readout, uint16_t hidden, const int16_t *h,
                                           int32_t *sum)
{
    uint16_t j;
    if (readout != KL_READOUT_MEAN) {
        return;
    }
    for (j = 0; j < hidden; j++) {
        sum[j] += h[j];
    }
}

/* After the last step, the mean readout h = sat16(shift_round(sum * inv_steps, 30)) (the
 * product is below 2^61); the last-state readout leaves h as it is. */
static inline void kl_recurrent_finish(uint8_t readout, uint16_t hidden, int32_t inv_steps,
                                       const int32_t *sum, int16_t *h)
{
    uint16_t j;
    if (readout != KL_READOUT_MEAN) {
        return;
    }
    for (j = 0; j < hidden; j++) {
        h[j] = kl_sat16(kl_shift_round_s64((int64_t)sum[j] * inv_steps, KL_INV_STEPS_FRAC_BITS));
    }
}

#endif /* KL_RECURRENT_H */
