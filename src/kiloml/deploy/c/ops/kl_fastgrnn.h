/*
 * kl_fastgrnn.h - FastGRNN / FastRNN over a whole sequence as one fused op (Kusupati et al.
 * 2018): per-step input normalisation, low-rank projections, state update and readout.
 *
 * Input x: int16 [steps][features] in Q(in). Per step:
 *   xn  = sat16(shift_round((x - mean) * inv_std, norm.shift))          Q(normalized)
 *   a   = sat32(W xn + U h)  (low rank: W2 sat16(W1 xn), U2 sat16(U1 h))  int32 Q(preact)
 *   c   = update(sat16(a + shift_round(b_update, shift)))                 Q(update_out)
 *   FastGRNN: z = gate(sat16(a + shift_round(b_gate, shift)))            Q(gate_out)
 *             coef = shift_round(coef_a (2^gate_out - z) + coef_b 2^gate_out, 15)
 *             h = sat16(shift_round(z h 2^state_align + coef c 2^update_align, state_shift))
 *             with coef_a = sigmoid(zeta), coef_b = sigmoid(nu) in Q15
 *   FastRNN:  h = sat16(shift_round(coef_b h 2^state_align + coef_a c 2^update_align,
 *                                   state_shift)), coef_a = sigmoid(alpha), coef_b = sigmoid(beta)
 * h is int16 in Q(state), h0 = 0. The output is h_T (KL_READOUT_LAST) or the mean
 * sat16(shift_round(sum_t h_t * inv_steps, 30)) with the sum in int32 (KL_READOUT_MEAN).
 * Each matrix product is rescaled and saturated as kl_matvec_* says. All products and sums are
 * exact in int64. Numpy twin (the spec): kiloml.ops.fastgrnn.
 *
 * Limits: every shift below 63 in magnitude, gate_frac_bits at most 30, preact_frac_bits at
 * most 24 when the gate or the update is sigmoid or tanh (kl_activation.h), and every sum of
 * the equations within int64; the quantizer's formats (activations in Q0..Q20) keep far inside
 * them. The 32-bit state update runs only within narrower bounds (kl_plan_update), otherwise
 * the reference update.
 */
#ifndef KL_FASTGRNN_H
#define KL_FASTGRNN_H

#include <stdint.h>

#include "kl_activation.h"
#include "kl_fixed.h"
#include "kl_matvec.h"
#include "kl_model_config.h"
#include "kl_normalize.h"

/* The Cortex-M4 state update for a quantSigm gate (kl_update_quant_gate_dsp in kl_fastgrnn.c)
 * is built only on cores with the DSP extension, in fast builds, and for a model that has such
 * a FastGRNN: KL_USES_QUANT_GATE, set by the generated kl_model_config.h (0 when undefined). */
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && !defined(KL_REFERENCE) && \
    defined(KL_USES_QUANT_GATE) && KL_USES_QUANT_GATE
#define KL_QUANT_GATE_DSP 1
#else
#define KL_QUANT_GATE_DSP 0
#endif

typedef struct {
    uint8_t cell;                 /* KL_FASTGRNN or KL_FASTRNN */
    uint8_t gate;                 /* kl_activation_t of the gate (FastGRNN) */
    uint8_t update;               /* kl_activation_t of the update */
    uint8_t readout;              /* KL_READOUT_LAST or KL_READOUT_MEAN */
    uint16_t hidden_size;
    uint16_t steps;
    kl_normalize_params_t norm;   /* features per step, mean, 1/std, shift */
    const kl_matrix_t *w_first;   /* W, or W1 when w_second is not NULL */
    const kl_matrix_t *w_second;  /* W2 or NULL */
    const kl_matrix_t *u_first;   /* U, or U1 when u_second is not NULL */
    const kl_matrix_t *u_second;  /* U2 or NULL */
    kl_vector_t bias_gate;        /* FastGRNN only */
    kl_vector_t bias_update;
    int16_t coef_a;               /* Q15 */
    int16_t coef_b;               /* Q15 */
    uint8_t preact_frac_bits;
    uint8_t gate_frac_bits;
    uint8_t state_align;          /* left shift of h before the state update */
    uint8_t update_align;         /* left shift of c before the state update */
    int8_t state_shift;
    int32_t inv_steps;            /* round(2^30 / steps) */
} kl_fastgrnn_params_t;

/* Working memory (in the caller's arena): xn [features], low_rank [max rank] (NULL without a
 * low-rank matrix), preact [hidden_size] and sum [hidden_size] (mean readout only, else NULL). */
typedef struct {
    int16_t *xn;
    int16_t *low_rank;
    int32_t *preact;
    int32_t *sum;
} kl_fastgrnn_buffers_t;

/* shift_round(v, shift) as (v * mul + add) >> rshift for |v| <= 2^15, -14 <= shift <= 30. */
typedef struct {
    int32_t mul;
    int32_t add;
    kl_plan_shift_t rshift;
} kl_affine_t;

/* Constants of the fast state update, computed once per inference or
 * sequence (kl_fastgrnn_prepare). */
typedef struct {
    kl_activation_plan_t gate;
    kl_activation_plan_t update;
    kl_affine_t bias_gate;
    kl_affine_t bias_update;
    int32_t coef_total; /* FastGRNN: coef = (coef_total - coef_a z) >> 15 */
    int32_t h_scale;    /* 2^(state_align + 32 - state_shift) */
    int32_t c_scale;    /* 2^(update_align + 32 - state_shift) */
    int sigmoid_gate;   /* kl_update_sigmoid_gate applies */
#if KL_QUANT_GATE_DSP
    int quant_gate;     /* kl_update_quant_gate_dsp applies (Cortex-M4) */
#endif
} kl_update_plan_t;

/* h[0 .. hidden_size-1] = the readout for x [steps][features]. Every buffer is fully written
 * before it is read. */
void kl_fastgrnn_s16(const kl_fastgrnn_params_t *p, const int16_t *x,
                     const kl_fastgrnn_buffers_t *buffers, int16_t *h);

/* Stepping through a sequence one frame at a time (EMI-FastGRNN's early exit reads an
 * instance step by step): kl_fastgrnn_prepare fills plan once for the sequence and returns
 * whether the fast update applies (always 0 under KL_REFERENCE); kl_fastgrnn_step_s16 then
 * turns the caller's state h[0 .. hidden_size-1] into the state after the frame x [features],
 * normalised as above, with the fast update when plan is not NULL (pass &plan only when
 * kl_fastgrnn_prepare returned 1), else the reference one. steps and readout are not read;
 * zero h to start a sequence. */
int kl_fastgrnn_prepare(const kl_fastgrnn_params_t *m, kl_update_plan_t *plan);
void kl_fastgrnn_step_s16(const kl_fastgrnn_params_t *m, const kl_update_plan_t *plan,
                          const int16_t *x, const kl_fastgrnn_buffers_t *buffers, int16_t *h);

#endif /* KL_FASTGRNN_H */
