/*
 * kl_gru.h - torch.nn.GRU (one layer, one direction) over a whole sequence as one fused op:
 * per-step input normalisation, the gates, the state update and the readout.
 *
 * Input x: int16 [steps][features] in Q(in). Per step, h int16 [hidden] in Q(state), h0 = 0:
 *   xn     = sat16(shift_round((x - mean) * inv_std, norm.shift))                Q(normalized)
 *   pre_g  = sat32(sat32(shift_round(W_g xn, s)) + sat32(shift_round(U_g h, s))) for g = r, z,
 *            int32 in Q(pre_frac_bits[g]) (kl_matvec_s16_s32, store then accumulate)
 *   r      = sigmoid(sat16(pre_r + b_r)),  z = sigmoid(sat16(pre_z + b_z))                 Q15
 *   hn     = sat16(sat32(shift_round(U_n h, s)) + b_hn)                           Q(hidden_n)
 *   n      = tanh(sat16(sat32(shift_round(W_n xn, s)) + b_in + shift_round(r hn, reset_shift)))
 *            with the tanh input in Q(pre_frac_bits[2]) and a Q15 output
 *   h      = sat16(shift_round((2^15 - z) n 2^align_q15 + z h 2^align_state, shift))
 *            (kl_blend_t update: (1 - z) n + z h in Q(state))
 * Each bias b is kl_vector_get: shift_round(value, shift) in its target format. The output is
 * h_T (KL_READOUT_LAST) or sat16(shift_round(sum_t h_t * inv_steps, 30)) with the sum in int32
 * (KL_READOUT_MEAN). All products and sums are exact in int64. Numpy twin (the spec):
 * kiloml.ops.gru.
 */
#ifndef KL_GRU_H
#define KL_GRU_H

#include <stdint.h>

#include "kl_matvec.h"
#include "kl_normalize.h"
#include "kl_recurrent.h"

#define KL_GRU_GATES 3 /* r, z, n: torch's order */

typedef struct {
    uint8_t readout;                    /* KL_READOUT_LAST or KL_READOUT_MEAN */
    uint16_t hidden_size;
    uint16_t steps;
    kl_normalize_params_t norm;         /* features per step, mean, 1/std, shift */
    const kl_matrix_t *w[KL_GRU_GATES]; /* W_r, W_z, W_n: [hidden][features] */
    const kl_matrix_t *u[KL_GRU_GATES]; /* U_r, U_z, U_n: [hidden][hidden] */
    kl_vector_t bias[4];                /* b_r, b_z, b_in, b_hn: [hidden] */
    uint8_t pre_frac_bits[KL_GRU_GATES]; /* activation inputs of r, z, n: Q0..Q24 */
    int8_t reset_shift;                 /* r hn: Q(15 + hidden_n) -> Q(pre_frac_bits[2]) */
    kl_blend_t update;                  /* h = (1 - z) n + z h */
    int32_t inv_steps;                  /* round(2^30 / steps) */
} kl_gru_params_t;

/* Working memory (in the caller's arena): xn [features], preact [4 * hidden] (the int32
 * pre-activations of r, z, W_n xn and U_n h, in that order) and sum [hidden] (mean readout
 * only, else NULL): 2 features + 16 hidden (+ 4 hidden) bytes. */
typedef struct {
    int16_t *xn;
    int32_t *preact;
    int32_t *sum;
} kl_gru_buffers_t;

/* h[0 .. hidden_size-1] = the readout for x [steps][features]. Every buffer is fully written
 * before it is read. */
void kl_gru_s16(const kl_gru_params_t *p, const int16_t *x, const kl_gru_buffers_t *buffers,
                int16_t *h);

#endif /* KL_GRU_H */
