/*
 * kl_fastgrnn.c - integer FastGRNN / FastRNN over a sequence (see kl_fastgrnn.h).
 *
 * The per-step work outside the matrix products (normalisation, activations, state update) has
 * two implementations that compute the same integers: the reference (int64, straight from the
 * equations in kl_fastgrnn.h) and a fast one in 32-bit arithmetic with two multiplies into
 * one 64-bit sum per hidden unit, used when the model's constants satisfy the bounds checked in
 * kl_plan_update (every model the quantizer produces does). Defining KL_REFERENCE at compile
 * time forces the reference path (the tests run both).
 */
#include "kl_fastgrnn.h"

#include "kl_activation.h"
#include "kl_fixed.h"

#ifdef KL_REFERENCE
#define KL_FAST 0
#else
#define KL_FAST 1
#endif

/* The sigmoid-gate update's Cortex-M4 loop (kl_update_sigmoid_gate_dsp). */
#if KL_FAST && defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define KL_SIGMOID_GATE_DSP 1
#else
#define KL_SIGMOID_GATE_DSP 0
#endif

/* sat16(a + b) for a bias b with |b| < 2^30 - 2^15 (kl_plan_update): QADD then SSAT with the
 * DSP extension (a saturated int32 sum saturates to the same int16); otherwise a is clamped to
 * [-2^30, 2^30) first, which keeps the sum in int32 without changing the result. */
#if KL_FAST && defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define KL_CLAMP_PREACT(a) (a)
#define KL_SAT16_ADD(a, b) __ssat(__qadd((a), (b)), 16)
#else
#define KL_CLAMP_PREACT(a) \
    ((a) > 0x3FFFFFFF ? 0x3FFFFFFF : ((a) < -0x40000000 ? -0x40000000 : (a)))
#define KL_SAT16_ADD(a, b) kl_sat16_s32((a) + (b))
#endif

/* On AVR (2 KB of RAM) the descriptors stay in program memory and the setup, the projections
 * and the reference update get frames of their own, which are gone while the deepest calls
 * run; elsewhere these functions are inlined as before. */
#if KL_DESCRIPTORS_IN_FLASH
#define KL_OWN_FRAME KL_NOINLINE
#else
#define KL_OWN_FRAME
#endif

/* A field of the params, read where it is used (in program memory on AVR, which saves a RAM
 * copy of the params during the whole sequence). */
#if KL_DESCRIPTORS_IN_FLASH
#define KL_P_U8(field) KL_READ_U8(&(field))
#define KL_P_U16(field) KL_READ_U16(&(field))
#define KL_P_S16(field) KL_READ_S16(&(field))
#define KL_P_S32(field) ((int32_t)KL_READ_U32(&(field)))
#define KL_P_PTR(field) KL_READ_PTR(&(field))
#else
#define KL_P_U8(field) (field)
#define KL_P_U16(field) (field)
#define KL_P_S16(field) (field)
#define KL_P_S32(field) (field)
#define KL_P_PTR(field) (field)
#endif

/* out = first x (or second sat16(first x)), stored or accumulated into int32 out. On AVR the
 * matrices are in program memory and are copied to RAM one at a time. */
static KL_OWN_FRAME void kl_project(const kl_matrix_t *first, const kl_matrix_t *second,
                                    const int16_t *x, int16_t *low_rank, int accumulate,
                                    int32_t *out)
{
#if KL_DESCRIPTORS_IN_FLASH
    kl_matrix_t matrix;
    if (second == 0) {
        kl_matvec_s16_s32(kl_flash_copy(&matrix, first, sizeof matrix), x, accumulate, out);
        return;
    }
    kl_matvec_s16_s16(kl_flash_copy(&matrix, first, sizeof matrix), x, low_rank);
    kl_matvec_s16_s32(kl_flash_copy(&matrix, second, sizeof matrix), low_rank, accumulate, out);
    return;
#endif
    if (second == 0) {
        kl_matvec_s16_s32(first, x, accumulate, out);
        return;
    }
    kl_matvec_s16_s16(first, x, low_rank);
    kl_matvec_s16_s32(second, low_rank, accumulate, out);
}

/* The 32-bit parts are exact within the limits of kl_fastgrnn.h: z, c and h are int16-range,
 * so z * h and coef * h are below 2^31; gate_frac_bits <= 30, so one - z < 2^31 (the Q15
 * coefficient products are int64); the final sum is within int64 by those limits. */
static KL_OWN_FRAME void kl_update_state_reference(const kl_fastgrnn_params_t *m, const int32_t *preact, int16_t *h)
{
#if KL_DESCRIPTORS_IN_FLASH
    kl_fastgrnn_params_t params;
    m = kl_flash_copy(&params, m, sizeof params);
#endif
    const int32_t one = (int32_t)1 << m->gate_frac_bits;
    const int64_t h_scale = (int64_t)1 << m->state_align;
    const int64_t c_scale = (int64_t)1 << m->update_align;
    const int frac_bits = m->preact_frac_bits;
    uint16_t j;
    for (j = 0; j < m->hidden_size; j++) {
        int64_t a = preact[j];
        int32_t c = kl_activation_s16(m->update, kl_sat16(a + kl_vector_get(&m->bias_update, j)),
                                      frac_bits);
        int64_t sum;
        if (m->cell == KL_FASTGRNN) {
            int32_t z = kl_activation_s16(m->gate, kl_sat16(a + kl_vector_get(&m->bias_gate, j)),
                                          frac_bits);
            int64_t coef = kl_shift_round_s64((int64_t)m->coef_a * (one - z) +
                                              (int64_t)m->coef_b * one, 15);
            sum = (int64_t)(z * h[j]) * h_scale + coef * c * c_scale;
        } else {
            sum = (int64_t)((int32_t)m->coef_b * h[j]) * h_scale +
                  (int64_t)(m->coef_a * c) * c_scale;
        }
        h[j] = kl_sat16(kl_shift_round_s64(sum, m->state_shift));
    }
}

/* shift_round(v, shift) of an int8/int16 vector element as (v * mul + add) >> rshift. */
static int kl_affine_prepare(kl_affine_t *a, int shift)
{
    if (shift < -14 || shift > 30) {
        return 0;
    }
    a->mul = shift > 0 ? 1 : (int32_t)1 << -shift;
    a->add = shift > 0 ? (int32_t)1 << (shift - 1) : 0;
    a->rshift = shift > 0 ? shift : 0;
    return 1;
}

/* FastGRNN coefficient of gate value z (see kl_update_plan_t). */
static int64_t kl_coef(int64_t total, int32_t coef_a, int32_t z)
{
    return (total - (int64_t)coef_a * z) >> 15;
}

/* Fill plan and return 1 when the fast update is exact for m, else 0. The fast update computes
 *   a' = clamp(a, -2^30, 2^30 - 1): sat16(a' + b) = sat16(a + b) for |b| < 2^30 - 2^15, which
 *        holds for bias shifts >= -14 (|b| <= 2^29), so the sums stay in int32;
 *   coef = (coef_total - coef_a z) >> 15 with
 *        coef_total = (coef_a + coef_b) 2^gate_frac_bits + 2^14, which is
 *        shift_round(coef_a (one - z) + coef_b one, 15); |coef_a z| <= 2^30, and the
 *        difference is within int32 for every z of the gate's range because |coef| < 2^16
 *        (checked at both ends of the range: the difference is linear in z) means
 *        -2^31 < coef_total - coef_a z < 2^31 (z = 0 is in the range, so coef_total fits too);
 *   h = sat16(hi32(2^31 + (z h) h_scale + (coef c) c_scale)): with S = state_shift,
 *        (sum + 2^(S-1)) >> S = floor((sum + 2^(S-1)) 2^(32-S) / 2^32), and h_scale, c_scale
 *        are those powers of two folded with the alignments (integers in [1, 2^30] when
 *        S >= 2 + align and S <= 32 + align); |z h| <= 2^30 and |coef c| < 2^31 (|coef| < 2^16,
 *        checked at both ends of the gate's range) keep the 64-bit sum below 2^62.
 * FastRNN uses coef_b for z and coef_a for coef (|coef_b h|, |coef_a c| <= 2^30). */
static KL_OWN_FRAME int kl_plan_update(const kl_fastgrnn_params_t *m, kl_update_plan_t *p)
{
#if KL_DESCRIPTORS_IN_FLASH
    kl_fastgrnn_params_t params;
    m = kl_flash_copy(&params, m, sizeof params);
#endif
    const int state_shift = m->state_shift;
    if (m->preact_frac_bits > 24 || state_shift < 1) {
        return 0;
    }
    if (state_shift < 2 + m->state_align || state_shift > 32 + m->state_align ||
        state_shift < 2 + m->update_align || state_shift > 32 + m->update_align) {
        return 0;
    }
    if (!kl_affine_prepare(&p->bias_update, m->bias_update.shift)) {
        return 0;
    }
    kl_activation_prepare(&p->update, m->update, m->preact_frac_bits);
    p->h_scale = (int32_t)1 << (m->state_align + 32 - state_shift);
    p->sigmoid_gate = 0;
#if KL_QUANT_GATE_DSP
    p->quant_gate = 0;
#endif
    p->c_scale = (int32_t)1 << (m->update_align + 32 - state_shift);
    if (m->cell == KL_FASTGRNN) {
        int64_t total;
        int32_t z_low = 0;
        int32_t z_high = INT16_MAX;
        int64_t coef_max;
        int64_t coef_min;
        if (m->gate_frac_bits > 20 || m->bias_gate.value_bits != m->bias_update.value_bits ||
            !kl_affine_prepare(&p->bias_gate, m->bias_gate.shift)) {
            return 0;
        }
        kl_activation_prepare(&p->gate, m->gate, m->preact_frac_bits);
        total = ((int64_t)m->coef_a + m->coef_b) * ((int64_t)1 << m->gate_frac_bits) + 16384;
        if (m->gate == KL_TANH || m->gate == KL_QUANT_TANH) {
            z_low = INT16_MIN;
        }
        coef_max = kl_coef(total, m->coef_a, m->coef_a >= 0 ? z_low : z_high);
        coef_min = kl_coef(total, m->coef_a, m->coef_a >= 0 ? z_high : z_low);
        if (coef_max >= 65536 || coef_min <= -65536) {
            return 0;
        }
        p->coef_total = (int32_t)total; /* within int32: see above */
        p->sigmoid_gate = m->gate == KL_SIGMOID &&
                          (m->update == KL_RELU || m->update == KL_TANH) &&
                          m->bias_gate.shift <= 0 && m->bias_update.shift <= 0 &&
                          m->preact_frac_bits <= 12;
#if KL_QUANT_GATE_DSP
        /* quantSigm's and quantTanh's rescaling a multiplication (Q15 and coarser inputs) */
        p->quant_gate = m->gate == KL_QUANT_SIGM &&
                        (m->update == KL_RELU || m->update == KL_QUANT_TANH) &&
                        m->bias_gate.shift <= 0 && m->bias_update.shift <= 0 &&
                        m->preact_frac_bits <= 15;
#endif
    }
    return 1;
}

/* h[j] for FastGRNN units [0, hidden): gate and update kinds are constants after inlining. */
KL_ALWAYS_INLINE void kl_update_fastgrnn(const kl_fastgrnn_params_t *m, const kl_update_plan_t *p,
                                         const int32_t *preact, int16_t *h, uint8_t gate,
                                         uint8_t update)
{
    const int8_t *bias_gate8 = (const int8_t *)KL_P_PTR(m->bias_gate.values);
    const int16_t *bias_gate16 = (const int16_t *)KL_P_PTR(m->bias_gate.values);
    const int8_t *bias_update8 = (const int8_t *)KL_P_PTR(m->bias_update.values);
    const int16_t *bias_update16 = (const int16_t *)KL_P_PTR(m->bias_update.values);
    const int narrow = KL_P_U8(m->bias_update.value_bits) == 8;
    const int32_t coef_a = KL_P_S16(m->coef_a);
    const uint32_t hidden = KL_P_U16(m->hidden_size);
    uint32_t j;
    for (j = 0; j < hidden; j++) {
        int32_t a = preact[j];
        int32_t bg = narrow ? KL_READ_S8(&bias_gate8[j]) : KL_READ_S16(&bias_gate16[j]);
        int32_t bu = narrow ? KL_READ_S8(&bias_update8[j]) : KL_READ_S16(&bias_update16[j]);
        int32_t z;
        int32_t c;
        int32_t coef;
        int64_t sum;
        a = KL_CLAMP_PREACT(a);
        bg = (bg * p->bias_gate.mul + p->bias_gate.add) >> p->bias_gate.rshift;
        bu = (bu * p->bias_update.mul + p->bias_update.add) >> p->bias_update.rshift;
        z = kl_activation_planned(gate, KL_SAT16_ADD(a, bg), &p->gate);
        c = kl_activation_planned(update, KL_SAT16_ADD(a, bu), &p->update);
        coef = (p->coef_total - coef_a * z) >> 15;
        sum = ((int64_t)1 << 31) + (int64_t)(z * h[j]) * p->h_scale +
              (int64_t)(coef * c) * p->c_scale;
        h[j] = kl_sat16_s32((int32_t)(sum >> 32));
    }
}

KL_ALWAYS_INLINE void kl_update_fastrnn(const kl_fastgrnn_params_t *m, const kl_update_plan_t *p,
                                        const int32_t *preact, int16_t *h, uint8_t update)
{
    const int8_t *bias8 = (const int8_t *)KL_P_PTR(m->bias_update.values);
    const int16_t *bias16 = (const int16_t *)KL_P_PTR(m->bias_update.values);
    const int narrow = KL_P_U8(m->bias_update.value_bits) == 8;
    const int32_t coef_a = KL_P_S16(m->coef_a);
    const int32_t coef_b = KL_P_S16(m->coef_b);
    const uint32_t hidden = KL_P_U16(m->hidden_size);
    uint32_t j;
    for (j = 0; j < hidden; j++) {
        int32_t a = preact[j];
        int32_t bu = narrow ? KL_READ_S8(&bias8[j]) : KL_READ_S16(&bias16[j]);
        int32_t c;
        int64_t sum;
        a = KL_CLAMP_PREACT(a);
        bu = (bu * p->bias_update.mul + p->bias_update.add) >> p->bias_update.rshift;
        c = kl_activation_planned(update, KL_SAT16_ADD(a, bu), &p->update);
        sum = ((int64_t)1 << 31) + (int64_t)(coef_b * h[j]) * p->h_scale +
              (int64_t)(coef_a * c) * p->c_scale;
        h[j] = kl_sat16_s32((int32_t)(sum >> 32));
    }
}

#if KL_DESCRIPTORS_IN_FLASH
/* AVR: each variant of the update in a frame of its own (only one is on the stack). */
static KL_NOINLINE void kl_update_fastrnn_any(const kl_fastgrnn_params_t *m,
                                              const kl_update_plan_t *p, const int32_t *preact,
                                              int16_t *h)
{
    kl_update_fastrnn(m, p, preact, h, KL_P_U8(m->update));
}

static KL_NOINLINE void kl_update_fastgrnn_default(const kl_fastgrnn_params_t *m,
                                                   const kl_update_plan_t *p,
                                                   const int32_t *preact, int16_t *h)
{
    kl_update_fastgrnn(m, p, preact, h, KL_SIGMOID, KL_RELU);
}

static KL_NOINLINE void kl_update_fastgrnn_any(const kl_fastgrnn_params_t *m,
                                               const kl_update_plan_t *p, const int32_t *preact,
                                               int16_t *h)
{
    kl_update_fastgrnn(m, p, preact, h, KL_P_U8(m->gate), KL_P_U8(m->update));
}

#define kl_update_fastrnn(m, p, preact, h, update) kl_update_fastrnn_any(m, p, preact, h)
#define kl_update_fastgrnn(m, p, preact, h, gate, update) \
    ((gate) == KL_SIGMOID && (update) == KL_RELU ? kl_update_fastgrnn_default(m, p, preact, h) \
                                                 : kl_update_fastgrnn_any(m, p, preact, h))
#else
/* FastGRNN with kiloml's default sigmoid gate and a relu or tanh update when the biases need
 * no rounding (bias shifts <= 0: the exporter folds positive shifts into the stored biases) and
 * the tanh update's input rescaling is a multiplication (preact_frac_bits <= 12), so that fewer
 * of the loop's constants live on the stack: the same integers as kl_update_fastgrnn. */
KL_ALWAYS_INLINE void kl_update_sigmoid_gate(const kl_fastgrnn_params_t *m,
                                             const kl_update_plan_t *p, const int32_t *preact,
                                             int16_t *h, int tanh_update)
{
    const int8_t *bias_gate8 = (const int8_t *)m->bias_gate.values;
    const int16_t *bias_gate16 = (const int16_t *)m->bias_gate.values;
    const int8_t *bias_update8 = (const int8_t *)m->bias_update.values;
    const int16_t *bias_update16 = (const int16_t *)m->bias_update.values;
    const int narrow = m->bias_update.value_bits == 8;
    const int32_t gate_bias_mul = p->bias_gate.mul;
    const int32_t update_bias_mul = p->bias_update.mul;
    /* the gate's rescaling (v * mul + add) >> rshift with rshift 0 or 1 as (v * 2 mul + add) >> 1
     * when rshift is 0 (add is 0 then), so that the shift is a constant */
    const int32_t gate_mul = p->gate.rshift ? p->gate.mul : p->gate.mul * 2;
    const int32_t gate_add = p->gate.add;
    const int32_t update_mul = p->update.mul;
    const int32_t coef_a = m->coef_a;
    const int32_t coef_total = p->coef_total;
    const int32_t h_scale = p->h_scale;
    const int32_t c_scale = p->c_scale;
    const uint32_t hidden = m->hidden_size;
    uint32_t j;
    for (j = 0; j < hidden; j++) {
        int32_t a = KL_CLAMP_PREACT(preact[j]);
        int32_t bg = narrow ? KL_READ_S8(&bias_gate8[j]) : KL_READ_S16(&bias_gate16[j]);
        int32_t bu = narrow ? KL_READ_S8(&bias_update8[j]) : KL_READ_S16(&bias_update16[j]);
        int32_t xg = KL_SAT16_ADD(a, bg * gate_bias_mul);
        int32_t xc = KL_SAT16_ADD(a, bu * update_bias_mul);
        int32_t magnitude = xg < 0 ? -xg : xg;
        int32_t t = kl_tanh_lookup_fast((magnitude * gate_mul + gate_add) >> 1);
        int32_t z = (32768 + (xg < 0 ? -t : t)) >> 1;
        int32_t c;
        int32_t coef;
        int64_t sum;
        if (tanh_update) {
            t = kl_tanh_lookup_fast((xc < 0 ? -xc : xc) * update_mul);
            c = xc < 0 ? -t : t;
        } else {
            c = xc > 0 ? xc : 0;
        }
        coef = (coef_total - coef_a * z) >> 15;
        sum = ((int64_t)1 << 31) + (int64_t)(z * h[j]) * h_scale + (int64_t)(coef * c) * c_scale;
        h[j] = kl_sat16_s32((int32_t)(sum >> 32));
    }
}
#endif

#if KL_SIGMOID_GATE_DSP
/* Q15 tanh of u in [0, 32767] (Q12), as kl_tanh_lookup_fast: both table entries in one word
 * (Cortex-M4 loads unaligned words; entry u >> 8 <= 127 and the next, <= 128, exist) and the
 * interpolation lower + ((upper - lower) f + 128) >> 8 as one SMLAD,
 * (lower (256 - f) + upper f + 128) >> 8, the same integer because 256 lower is a multiple
 * of 256. */
KL_ALWAYS_INLINE int32_t kl_tanh_pair_q15(uint32_t u)
{
    const uint32_t f = u & 255;
    uint32_t pair;
    __builtin_memcpy(&pair, kl_tanh_table_q15 + (u >> 8), 4);
    return __smlad((int32_t)pair, (int32_t)((f << 16) + 256 - f), 128) >> 8;
}

/* kl_update_sigmoid_gate with the DSP extension: the preactivation clamped once by SSAT
 * (|a| <= 2^30 keeps a + b in int32 for the biases' |b| <= 2^29), the biases multiplied and
 * added by SMLABB/SMLABT with both multipliers in one register, the signs restored by
 * eor/sub with the input's sign, the table read as one word, and the rounding of the 64-bit
 * state sum, hi32(2^31 + s), as hi32(s) + bit 31 of its low word. The same integers. */
KL_ALWAYS_INLINE void kl_update_sigmoid_gate_dsp(const kl_fastgrnn_params_t *m,
                                                 const kl_update_plan_t *p,
                                                 const int32_t *preact, int16_t *h,
                                                 int tanh_update, int narrow)
{
    const int8_t *bias_gate8 = (const int8_t *)m->bias_gate.values;
    const int16_t *bias_gate16 = (const int16_t *)m->bias_gate.values;
    const int8_t *bias_update8 = (const int8_t *)m->bias_update.values;
    const int16_t *bias_update16 = (const int16_t *)m->bias_update.values;
    /* bias multipliers <= 2^14 (shifts >= -14) as the halves of one register */
    const int32_t bias_muls = (int32_t)((uint32_t)p->bias_gate.mul |
                                        ((uint32_t)p->bias_update.mul << 16));
    /* (v * mul + add) >> rshift as (v * gate_mul + 1) >> 1: with rshift 1, mul and add are 1;
     * with rshift 0, v * 2 mul is even and the added 1 is floored away */
    const int32_t gate_mul = p->gate.rshift ? p->gate.mul : p->gate.mul * 2;
    const int32_t update_mul = p->update.mul;
    const int32_t coef_a = m->coef_a;
    const int32_t coef_total = p->coef_total;
    const int32_t h_scale = p->h_scale;
    const int32_t c_scale = p->c_scale;
    uint32_t j = m->hidden_size;
    if (j == 0) {
        return;
    }
    do {
        int32_t a;
        int32_t bg;
        int32_t bu;
        int32_t xg;
        int32_t xc;
        int32_t sign;
        int32_t t;
        int32_t z;
        int32_t c;
        int32_t coef;
        int64_t sum;
        j--;
        a = __ssat(preact[j], 31);
        if (narrow) {
            bg = bias_gate8[j];
            bu = bias_update8[j];
        } else {
            bg = bias_gate16[j];
            bu = bias_update16[j];
        }
        xg = __ssat(__smlabb(bg, bias_muls, a), 16);
        xc = __ssat(__smlabt(bu, bias_muls, a), 16);
        sign = xg >> 31;
        t = kl_tanh_pair_q15(__usat((((xg ^ sign) - sign) * gate_mul + 1) >> 1, 15));
        z = (32768 + ((t ^ sign) - sign)) >> 1;
        if (tanh_update) {
            sign = xc >> 31;
            t = kl_tanh_pair_q15(__usat(((xc ^ sign) - sign) * update_mul, 15));
            c = (t ^ sign) - sign;
        } else {
            c = xc > 0 ? xc : 0;
        }
        coef = (coef_total - coef_a * z) >> 15;
        sum = (int64_t)(z * h[j]) * h_scale + (int64_t)(coef * c) * c_scale;
        h[j] = (int16_t)__ssat((int32_t)(sum >> 32) + (int32_t)((uint32_t)sum >> 31), 16);
    } while (j != 0);
}
#endif

#if KL_QUANT_GATE_DSP
/* FastGRNN with quantSigm gate and a quantTanh or relu update (FastGRNN's own deployment
 * activations) on the Cortex-M4: pure integer arithmetic, no table. With the preactivation in
 * Q(f), f <= 15, and bias shifts <= 0 (kl_plan_update), per unit
 *   xg = sat16(a + bg 2^-sg), xc = sat16(a + bu 2^-su)   SSAT #31 once, SMLABB/SMLABT, SSAT #16
 *   z = clamp((xg 2^(15-f) + 32768) >> 1, 0, 32767)      one MLA, one USAT #15 of its ASR #1
 *   c = sat16(xc 2^(15-f))                               (quantTanh) or
 *   c = clamp(a + bu 2^-su, 0, 32767)                    (relu of sat16: one USAT #15)
 * and the state sum as in kl_update_sigmoid_gate_dsp: the same integers as
 * kl_update_fastgrnn. quantTanh rescales its input as quantSigm does (kl_activation_prepare),
 * so one register holds the multiplier of both and the loop's constants fit the registers.
 * Compiled only for a model with such a FastGRNN (KL_QUANT_GATE_DSP, kl_fastgrnn.h): its four
 * copies are code the other models do not carry. */
KL_ALWAYS_INLINE void kl_update_quant_gate_dsp(const kl_fastgrnn_params_t *m,
                                               const kl_update_plan_t *p,
                                               const int32_t *preact, int16_t *h,
                                               int tanh_update, int narrow)
{
    const int8_t *bias_gate8 = (const int8_t *)m->bias_gate.values;
    const int16_t *bias_gate16 = (const int16_t *)m->bias_gate.values;
    const int8_t *bias_update8 = (const int8_t *)m->bias_update.values;
    const int16_t *bias_update16 = (const int16_t *)m->bias_update.values;
    const int32_t bias_muls = (int32_t)((uint32_t)p->bias_gate.mul |
                                        ((uint32_t)p->bias_update.mul << 16));
    const int32_t mul = p->gate.mul; /* = p->update.mul for quantTanh */
    const int32_t coef_a = m->coef_a;
    const int32_t coef_total = p->coef_total;
    const int32_t h_scale = p->h_scale;
    const int32_t c_scale = p->c_scale;
    uint32_t j = m->hidden_size;
    if (j == 0) {
        return;
    }
    do {
        int32_t a;
        int32_t bg;
        int32_t bu;
        int32_t z;
        int32_t c;
        int32_t coef;
        int64_t sum;
        j--;
        a = __ssat(preact[j], 31);
        if (narrow) {
            bg = bias_gate8[j];
            bu = bias_update8[j];
        } else {
            bg = bias_gate16[j];
            bu = bias_update16[j];
        }
        z = __usat((__ssat(__smlabb(bg, bias_muls, a), 16) * mul + 32768) >> 1, 15);
        if (tanh_update) {
            c = __ssat(__ssat(__smlabt(bu, bias_muls, a), 16) * mul, 16);
        } else {
            c = __usat(__smlabt(bu, bias_muls, a), 15);
        }
        coef = (coef_total - coef_a * z) >> 15;
        sum = (int64_t)(z * h[j]) * h_scale + (int64_t)(coef * c) * c_scale;
        h[j] = (int16_t)__ssat((int32_t)(sum >> 32) + (int32_t)((uint32_t)sum >> 31), 16);
    } while (j != 0);
}
#endif

/* The fast update: on AVR each variant in a frame of its own, specialised for kiloml's default
 * activations (sigmoid gate, relu update); elsewhere kl_update_sigmoid_gate where it applies
 * (kiloml's defaults; on cores with the DSP extension kl_update_sigmoid_gate_dsp, one loop per
 * update kind and bias width; for a model with a quantSigm gate, kl_update_quant_gate_dsp
 * likewise); other combinations branch on the kind per element. */
static KL_NOINLINE void kl_update_state_fast(const kl_fastgrnn_params_t *m, const kl_update_plan_t *p,
                                             const int32_t *preact, int16_t *h)
{
    if (KL_P_U8(m->cell) != KL_FASTGRNN) {
        kl_update_fastrnn(m, p, preact, h, KL_P_U8(m->update));
#if KL_DESCRIPTORS_IN_FLASH
    } else if (KL_P_U8(m->gate) == KL_SIGMOID && KL_P_U8(m->update) == KL_RELU) {
        kl_update_fastgrnn(m, p, preact, h, KL_SIGMOID, KL_RELU);
#else
    } else if (p->sigmoid_gate) {
#if KL_SIGMOID_GATE_DSP
        const int narrow = m->bias_update.value_bits == 8;
        if (m->update == KL_TANH) {
            if (narrow) {
                kl_update_sigmoid_gate_dsp(m, p, preact, h, 1, 1);
            } else {
                kl_update_sigmoid_gate_dsp(m, p, preact, h, 1, 0);
            }
        } else if (narrow) {
            kl_update_sigmoid_gate_dsp(m, p, preact, h, 0, 1);
        } else {
            kl_update_sigmoid_gate_dsp(m, p, preact, h, 0, 0);
        }
#else
        kl_update_sigmoid_gate(m, p, preact, h, m->update == KL_TANH);
#endif
#endif
#if KL_QUANT_GATE_DSP
    } else if (p->quant_gate) {
        const int narrow = m->bias_update.value_bits == 8;
        if (m->update == KL_QUANT_TANH) {
            if (narrow) {
                kl_update_quant_gate_dsp(m, p, preact, h, 1, 1);
            } else {
                kl_update_quant_gate_dsp(m, p, preact, h, 1, 0);
            }
        } else if (narrow) {
            kl_update_quant_gate_dsp(m, p, preact, h, 0, 1);
        } else {
            kl_update_quant_gate_dsp(m, p, preact, h, 0, 0);
        }
#endif
    } else {
        kl_update_fastgrnn(m, p, preact, h, KL_P_U8(m->gate), KL_P_U8(m->update));
    }
}

/* sum[j] += h[j] for j < n (the mean readout's running sums). With the DSP extension two
 * entries per pass: one (unaligned) word of h, both sums by LDRD/STRD (sum is int32-aligned),
 * added by SXTAH and an ASR-shifted ADD, in inline assembly because GCC 12 splits the LDRD;
 * the same sums. */
KL_ALWAYS_INLINE void kl_accumulate_state(int32_t *sum, const int16_t *h, uint32_t n)
{
    uint32_t j = 0;
#if KL_SIGMOID_GATE_DSP
    uint32_t pairs = n >> 1;
    if (pairs != 0) {
        uint32_t word;
        uint32_t low;
        uint32_t high;
        __asm__("1:\n\t"
                "ldr %[word], [%[h]], #4\n\t"
                "ldrd %[low], %[high], [%[sum]]\n\t"
                "subs %[pairs], %[pairs], #1\n\t"
                "sxtah %[low], %[low], %[word]\n\t"
                "add %[high], %[high], %[word], asr #16\n\t"
                "strd %[low], %[high], [%[sum]], #8\n\t"
                "bne 1b"
                : [h] "+r"(h), [sum] "+r"(sum), [pairs] "+r"(pairs), [word] "=&r"(word),
                  [low] "=&r"(low), [high] "=&r"(high)
                :
                : "cc", "memory");
    }
    n &= 1;
#endif
    for (; j < n; j++) {
        sum[j] += h[j];
    }
}

/* One step from the state h: normalise the frame x, project, update h in place. */
KL_ALWAYS_INLINE void kl_fastgrnn_advance(const kl_fastgrnn_params_t *m,
                                          const kl_normalize_params_t *norm,
                                          const kl_update_plan_t *plan, int fast,
                                          const int16_t *x, const kl_fastgrnn_buffers_t *buffers,
                                          int16_t *h)
{
    kl_normalize_frame_s16(norm, x, buffers->xn);
    kl_project(KL_P_PTR(m->w_first), KL_P_PTR(m->w_second), buffers->xn, buffers->low_rank,
               0, buffers->preact);
    kl_project(KL_P_PTR(m->u_first), KL_P_PTR(m->u_second), h, buffers->low_rank, 1,
               buffers->preact);
    if (fast) {
        kl_update_state_fast(m, plan, buffers->preact, h);
    } else {
        kl_update_state_reference(m, buffers->preact, h);
    }
}

void kl_fastgrnn_s16(const kl_fastgrnn_params_t *m, const int16_t *x,
                     const kl_fastgrnn_buffers_t *buffers, int16_t *h)
{
    const uint16_t features = KL_READ_U16(&m->norm.features); /* m may be in flash (AVR) */
    kl_update_plan_t plan;
    int fast;
    uint16_t t;
    uint16_t j;
#if KL_DESCRIPTORS_IN_FLASH
    kl_normalize_params_t norm; /* the other fields are read where they are used */
    kl_flash_copy(&norm, &m->norm, sizeof norm);
#define KL_NORM (&norm)
#else
#define KL_NORM (&m->norm)
#endif
    fast = KL_FAST && kl_plan_update(m, &plan);
    for (j = 0; j < KL_P_U16(m->hidden_size); j++) {
        h[j] = 0;
        if (KL_P_U8(m->readout) == KL_READOUT_MEAN) {
            buffers->sum[j] = 0;
        }
    }
    for (t = 0; t < KL_P_U16(m->steps); t++) {
        kl_fastgrnn_advance(m, KL_NORM, &plan, fast, x + (uint32_t)t * features, buffers, h);
        if (KL_P_U8(m->readout) == KL_READOUT_MEAN) {
            kl_accumulate_state(buffers->sum, h, KL_P_U16(m->hidden_size));
        }
    }
    if (KL_P_U8(m->readout) == KL_READOUT_MEAN) {
        for (j = 0; j < KL_P_U16(m->hidden_size); j++) {
            h[j] = kl_sat16(kl_shift_round_s64((int64_t)buffers->sum[j] * KL_P_S32(m->inv_steps),
                                               KL_INV_STEPS_FRAC_BITS));
        }
    }
}

int kl_fastgrnn_prepare(const kl_fastgrnn_params_t *m, kl_update_plan_t *plan)
{
    return KL_FAST && kl_plan_update(m, plan);
}

void kl_fastgrnn_step_s16(const kl_fastgrnn_params_t *m, const kl_update_plan_t *plan,
                          const int16_t *x, const kl_fastgrnn_buffers_t *buffers, int16_t *h)
{
#if KL_DESCRIPTORS_IN_FLASH
    kl_normalize_params_t norm;
    kl_flash_copy(&norm, &m->norm, sizeof norm);
    kl_fastgrnn_advance(m, &norm, plan, plan != 0, x, buffers, h);
#else
    kl_fastgrnn_advance(m, &m->norm, plan, plan != 0, x, buffers, h);
#endif
}
