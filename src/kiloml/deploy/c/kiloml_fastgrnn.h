/*
 * kiloml_fastgrnn.h - integer FastGRNN / FastRNN sequence classifier (Kusupati et al. 2018).
 *
 * Input x: int16 [steps][input_size] in Q(input) (see the generated model.h). Per step:
 *   xn  = sat16(shift_round((x - mean) * inv_std, normalize_shift))        Q(normalized)
 *   a   = sat32(W xn + U h)  (low rank: W2 sat16(W1 xn), U2 sat16(U1 h))    int32 Q(preact)
 *   c   = update(sat16(a + shift_round(b_update, shift)))                   Q(update_out)
 *   FastGRNN: z = gate(sat16(a + shift_round(b_gate, shift)))              Q(gate_out)
 *             coef = shift_round(coef_a (2^gate_out - z) + coef_b 2^gate_out, 15)
 *             h = sat16(shift_round(z h 2^state_align + coef c 2^update_align, state_shift))
 *             with coef_a = sigmoid(zeta), coef_b = sigmoid(nu) in Q15
 *   FastRNN:  h = sat16(shift_round(coef_b h 2^state_align + coef_a c 2^update_align,
 *                                   state_shift)), coef_a = sigmoid(alpha), coef_b = sigmoid(beta)
 * h is int16 in Q(state), h0 = 0. Readout r = h_T, or the mean
 * sat16(shift_round(sum_t h_t * inv_steps, 30)) with the sum in int32 (steps <= 65536).
 * logits = sat32(sat32(shift_round(W_head r, shift)) + shift_round(b_head, shift)), int32.
 * All products and sums are exact in int64. Integer reference: kiloml.quantize.simulator.
 */
#ifndef KILOML_FASTGRNN_H
#define KILOML_FASTGRNN_H

#include <stdint.h>

#include "kiloml_matvec.h"

#define KL_FASTGRNN 0
#define KL_FASTRNN 1
#define KL_READOUT_LAST 0
#define KL_READOUT_MEAN 1

/* A vector of int8_t or int16_t (value_bits) rescaled by shift when read. */
typedef struct {
    const void *values;
    uint8_t value_bits;
    int8_t shift;
} kl_vector_t;

typedef struct {
    uint8_t kind;           /* KL_FASTGRNN or KL_FASTRNN */
    uint8_t gate;           /* kl_activation_t of the gate (FastGRNN) */
    uint8_t update;         /* kl_activation_t of the update */
    uint8_t readout;        /* KL_READOUT_LAST or KL_READOUT_MEAN */
    uint16_t input_size;
    uint16_t hidden_size;
    uint16_t num_classes;
    uint16_t steps;
    const int16_t *input_mean;    /* [input_size], Q(input) */
    const int16_t *input_inv_std; /* [input_size], 1/std in its own Q */
    int8_t normalize_shift;
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
    const kl_matrix_t *head;
    kl_vector_t head_bias;
} kl_rnn_model_t;

/* Caller-owned working memory: h, xn, low_rank (max rank, at least 1), preact, and sum
 * (hidden_size entries, used only by the mean readout). */
typedef struct {
    int16_t *h;
    int16_t *xn;
    int16_t *low_rank;
    int32_t *preact;
    int32_t *sum;
} kl_rnn_buffers_t;

/* Logits [num_classes] (int32) for x [steps][input_size]; returns the arg-max class (the
 * lowest index on ties). Every buffer is fully written before it is read. */
int kl_rnn_predict(const kl_rnn_model_t *m, const int16_t *x, const kl_rnn_buffers_t *buffers,
                   int32_t *logits);

#endif /* KILOML_FASTGRNN_H */
