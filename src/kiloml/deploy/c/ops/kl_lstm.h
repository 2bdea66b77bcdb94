/*
 * kl_lstm.h - torch.nn.LSTM (one layer, one direction, no projection) over a whole sequence
 * as one fused op: per-step input normalisation, the gates, the cell and state updates and the
 * readout.
 *
 * Input x: int16 [steps][features] in Q(in). Per step, h int16 [hidden] in Q(state) and c int16
 * [hidden] in Q(cell_frac_bits), h0 = c0 = 0:
 *   xn     = sat16(shift_round((x - mean) * inv_std, norm.shift))                Q(normalized)
 *   pre_g  = sat32(sat32(shift_round(W_g xn, s)) + sat32(shift_round(U_g h, s)))
 *            for g = i, f, g, o: int32 in Q(pre_frac_bits[g]) (kl_matvec_s16_s32)
 *   i, f, o = sigmoid(sat16(pre + b)),  g = tanh(sat16(pre + b))                        Q15
 *   c      = sat16(shift_round(i g 2^align_q15 + f c 2^align_state, shift))
 *            (kl_blend_t cell_update: f c + i g in Q(cell))
 *   h      = sat16(shift_round(o tanh(c), output_shift))  (tanh of Q(cell); output_shift =
 *            30 - state)
 * Each bias b is kl_vector_get: shift_round(value, shift) in its gate's format. The output is
 * h_T (KL_READOUT_LAST) or sat16(shift_round(sum_t h_t * inv_steps, 30)) with the sum in int32
 * (KL_READOUT_MEAN). All products and sums are exact in int64. Numpy twin (the spec):
 * kiloml.ops.lstm.
 */
#ifndef KL_LSTM_H
#define KL_LSTM_H

#include <stdint.h>

#include "kl_matvec.h"
#include "kl_normalize.h"
#include "kl_recurrent.h"

#define KL_LSTM_GATES 4 /* i, f, g, o: torch's order */

typedef struct {
    uint8_t readout;                      /* KL_READOUT_LAST or KL_READOUT_MEAN */
    uint16_t hidden_size;
    uint16_t steps;
    kl_normalize_params_t norm;           /* features per step, mean, 1/std, shift */
    const kl_matrix_t *w[KL_LSTM_GATES];  /* W_i, W_f, W_g, W_o: [hidden][features] */
    const kl_matrix_t *u[KL_LSTM_GATES];  /* U_i, U_f, U_g, U_o: [hidden][hidden] */
    kl_vector_t bias[KL_LSTM_GATES];      /* b_i, b_f, b_g, b_o: [hidden] */
    uint8_t pre_frac_bits[KL_LSTM_GATES]; /* activation inputs: Q0..Q24 */
    uint8_t cell_frac_bits;               /* Q(cell), 0..24 (tanh input) */
    kl_blend_t cell_update;               /* c = f c + i g */
    int8_t output_shift;                  /* o tanh(c): Q30 -> Q(state) */
    int32_t inv_steps;                    /* round(2^30 / steps) */
} kl_lstm_params_t;

/* Working memory (in the caller's arena): xn [features], preact [4 * hidden] (the int32
 * pre-activations of i, f, g, o in that order), cell [hidden] and sum [hidden] (mean readout
 * only, else NULL): 2 features + 18 hidden (+ 4 hidden) bytes. */
typedef struct {
    int16_t *xn;
    int32_t *preact;
    int16_t *cell;
    int32_t *sum;
} kl_lstm_buffers_t;

/* h[0 .. hidden_size-1] = the readout for x [steps][features]. Every buffer is fully written
 * before it is read. */
void kl_lstm_s16(const kl_lstm_params_t *p, const int16_t *x, const kl_lstm_buffers_t *buffers,
                 int16_t *h);

#endif /* KL_LSTM_H */
