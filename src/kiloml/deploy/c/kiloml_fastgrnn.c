/*
 * kiloml_fastgrnn.c - reference integer FastGRNN / FastRNN classifier (see kiloml_fastgrnn.h).
 */
#include "kiloml_fastgrnn.h"

#include "kiloml_activation.h"
#include "kiloml_fixed.h"

/* Element i rescaled by v->shift; 32-bit arithmetic is exact for -16 <= shift <= 30 because
 * |value| <= 2^15. */
static inline int64_t kl_vector_get(const kl_vector_t *v, uint16_t i)
{
    int32_t value = v->value_bits == 8 ? ((const int8_t *)v->values)[i]
                                       : ((const int16_t *)v->values)[i];
    if (v->shift >= -16 && v->shift <= 30) {
        return kl_shift_round_s32(value, v->shift);
    }
    return kl_shift_round_s64(value, v->shift);
}

/* out = first x (or second sat16(first x)), stored or accumulated into int32 out. */
static void kl_project(const kl_matrix_t *first, const kl_matrix_t *second, const int16_t *x,
                       int16_t *low_rank, int accumulate, int32_t *out)
{
    if (second == 0) {
        kl_matvec_s16_s32(first, x, accumulate, out);
        return;
    }
    kl_matvec_s16_s16(first, x, low_rank);
    kl_matvec_s16_s32(second, low_rank, accumulate, out);
}

static void kl_normalize(const kl_rnn_model_t *m, const int16_t *x, int16_t *xn)
{
    uint16_t f;
    for (f = 0; f < m->input_size; f++) {
        int64_t centered = (int64_t)x[f] - m->input_mean[f];
        xn[f] = kl_sat16(kl_shift_round_s64(centered * m->input_inv_std[f], m->normalize_shift));
    }
}

/* Bounds that keep the 32-bit parts exact, guaranteed by the Q-format ranges the quantizer
 * picks (activations Q0..Q20): z, c and h are int16-range, so z * h and coef * h are below
 * 2^31; gate_frac_bits <= 20, so one - z < 2^21 and the Q15 coefficient products (int64) stay
 * below 2^36; state_align and update_align are at most 20. */
static void kl_update_state(const kl_rnn_model_t *m, const int32_t *preact, int16_t *h)
{
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
        if (m->kind == KL_FASTGRNN) {
            int32_t z = kl_activation_s16(m->gate, kl_sat16(a + kl_vector_get(&m->bias_gate, j)),
                                          frac_bits);
            int64_t coef = kl_shift_round_s64((int64_t)m->coef_a * (one - z) +
                                              (int64_t)m->coef_b * one, 15);
            sum = (int64_t)(z * h[j]) * h_scale + coef * c * c_scale;
        } else {
            sum = (int64_t)(m->coef_b * h[j]) * h_scale + (int64_t)(m->coef_a * c) * c_scale;
        }
        h[j] = kl_sat16(kl_shift_round_s64(sum, m->state_shift));
    }
}

int kl_rnn_predict(const kl_rnn_model_t *m, const int16_t *x, const kl_rnn_buffers_t *buffers,
                   int32_t *logits)
{
    int16_t *h = buffers->h;
    uint16_t t;
    uint16_t j;
    int best = 0;
    for (j = 0; j < m->hidden_size; j++) {
        h[j] = 0;
        if (m->readout == KL_READOUT_MEAN) {
            buffers->sum[j] = 0;
        }
    }
    for (t = 0; t < m->steps; t++) {
        kl_normalize(m, x + (uint32_t)t * m->input_size, buffers->xn);
        kl_project(m->w_first, m->w_second, buffers->xn, buffers->low_rank, 0, buffers->preact);
        kl_project(m->u_first, m->u_second, h, buffers->low_rank, 1, buffers->preact);
        kl_update_state(m, buffers->preact, h);
        if (m->readout == KL_READOUT_MEAN) {
            for (j = 0; j < m->hidden_size; j++) {
                buffers->sum[j] += h[j];
            }
        }
    }
    if (m->readout == KL_READOUT_MEAN) {
        for (j = 0; j < m->hidden_size; j++) {
            h[j] = kl_sat16(kl_shift_round_s64((int64_t)buffers->sum[j] * m->inv_steps, 30));
        }
    }
    kl_matvec_s16_s32(m->head, h, 0, logits);
    for (j = 0; j < m->num_classes; j++) {
        logits[j] = kl_sat32((int64_t)logits[j] + kl_vector_get(&m->head_bias, j));
        if (logits[j] > logits[best]) {
            best = (int)j;
        }
    }
    return best;
}
