/*
 * kl_lstm.c - integer torch.nn.LSTM over a sequence (see kl_lstm.h).
 *
 * The per-step work after the matrix products (gates, cell and state) has two implementations
 * that compute the same integers: the reference (int64, straight from the equations in
 * kl_lstm.h) and a fast one in 32-bit arithmetic with one 64-bit sum per hidden unit, used
 * when the model's constants pass kl_lstm_plan (every model the quantizer produces does).
 * Defining KL_REFERENCE at compile time forces the reference (the tests run both).
 */
#include "kl_lstm.h"

#include "kl_activation.h"
#include "kl_fixed.h"

#ifdef KL_REFERENCE
#define KL_FAST 0
#else
#define KL_FAST 1
#endif

enum { KL_LSTM_I, KL_LSTM_F, KL_LSTM_G, KL_LSTM_O };

/* Gate k of unit j: its activation of sat16(pre + b). */
static int32_t kl_lstm_gate_reference(const kl_lstm_params_t *m, const int32_t *preact, int k,
                                      uint16_t j)
{
    int16_t input = kl_sat16(preact[(uint32_t)k * m->hidden_size + j] +
                             kl_vector_get(&m->bias[k], j));
    return k == KL_LSTM_G ? kl_tanh_s16_q15(input, m->pre_frac_bits[k])
                          : kl_sigmoid_s16_q15(input, m->pre_frac_bits[k]);
}

/* The equations of kl_lstm.h in int64. Gates are Q15, so the blend products and o tanh(c) are
 * below 2^30 in magnitude. */
static void kl_lstm_update_reference(const kl_lstm_params_t *m, const int32_t *preact,
                                     int16_t *cell, int16_t *h)
{
    uint16_t j;
    for (j = 0; j < m->hidden_size; j++) {
        int32_t i = kl_lstm_gate_reference(m, preact, KL_LSTM_I, j);
        int32_t f = kl_lstm_gate_reference(m, preact, KL_LSTM_F, j);
        int32_t g = kl_lstm_gate_reference(m, preact, KL_LSTM_G, j);
        int32_t o = kl_lstm_gate_reference(m, preact, KL_LSTM_O, j);
        int32_t tanh_c;
        cell[j] = kl_blend_reference(&m->cell_update, i, g, f, cell[j]);
        tanh_c = kl_tanh_s16_q15(cell[j], m->cell_frac_bits);
        h[j] = kl_sat16(kl_shift_round_s64((int64_t)(o * tanh_c), m->output_shift));
    }
}

/* Constants of the fast update, prepared once per inference. */
typedef struct {
    kl_activation_plan_t act[KL_LSTM_GATES];
    kl_activation_plan_t cell_tanh;
    kl_bias_plan_t bias[KL_LSTM_GATES];
    kl_blend_plan_t cell_update;
} kl_lstm_plan_t;

/* Fill plan and return 1 when the fast update equals the reference for m: activation inputs in
 * Q0..Q24 (kl_activation_planned), bias shifts in -14..30 (kl_bias_prepare),
 * 1 <= output_shift <= 31 (kl_round_shift_pos_s32 of |o tanh(c)| < 2^30) and a cell blend
 * kl_blend_prepare accepts. */
static int kl_lstm_plan(const kl_lstm_params_t *m, kl_lstm_plan_t *p)
{
    int k;
    if (m->output_shift < 1 || m->output_shift > 31 || m->cell_frac_bits > 24 ||
        !kl_blend_prepare(&p->cell_update, &m->cell_update)) {
        return 0;
    }
    kl_activation_prepare(&p->cell_tanh, KL_TANH, m->cell_frac_bits);
    for (k = 0; k < KL_LSTM_GATES; k++) {
        if (m->pre_frac_bits[k] > 24 || !kl_bias_prepare(&p->bias[k], &m->bias[k])) {
            return 0;
        }
        kl_activation_prepare(&p->act[k], k == KL_LSTM_G ? KL_TANH : KL_SIGMOID,
                              m->pre_frac_bits[k]);
    }
    return 1;
}

/* The gates by kl_gate_*_s32, in place in their preact slots; then per unit c and h. */
static KL_NOINLINE void kl_lstm_update_fast(const kl_lstm_params_t *m, const kl_lstm_plan_t *p,
                                            int32_t *preact, int16_t *cell, int16_t *h)
{
    const uint32_t hidden = m->hidden_size;
    const int32_t *i = preact;
    const int32_t *f = preact + hidden;
    const int32_t *g = preact + 2 * hidden;
    const int32_t *o = preact + 3 * hidden;
    const int output_shift = m->output_shift;
    uint32_t j;
    int k;
    for (k = 0; k < KL_LSTM_GATES; k++) {
        if (k == KL_LSTM_G) {
            kl_gate_tanh_s32(preact + k * hidden, &m->bias[k], &p->bias[k], &p->act[k], hidden);
        } else {
            kl_gate_sigmoid_s32(preact + k * hidden, &m->bias[k], &p->bias[k], &p->act[k],
                                hidden);
        }
    }
    for (j = 0; j < hidden; j++) {
        int32_t c = kl_blend_fast(&p->cell_update, i[j], g[j], f[j], cell[j]);
        int32_t tanh_c = kl_activation_planned(KL_TANH, c, &p->cell_tanh);
        cell[j] = (int16_t)c;
        h[j] = kl_sat16_s32(kl_round_shift_pos_s32(o[j] * tanh_c, output_shift));
    }
}

void kl_lstm_s16(const kl_lstm_params_t *m, const int16_t *x, const kl_lstm_buffers_t *buffers,
                 int16_t *h)
{
    const uint16_t features = m->norm.features;
    const uint32_t hidden = m->hidden_size;
    int32_t *preact = buffers->preact;
    kl_lstm_plan_t plan;
    int fast;
    uint16_t t;
    uint16_t j;
    int k;
    fast = KL_FAST && kl_lstm_plan(m, &plan);
    kl_recurrent_start(m->readout, m->hidden_size, h, buffers->sum);
    for (j = 0; j < m->hidden_size; j++) {
        buffers->cell[j] = 0;
    }
    for (t = 0; t < m->steps; t++) {
        kl_normalize_frame_s16(&m->norm, x + (uint32_t)t * features, buffers->xn);
        for (k = 0; k < KL_LSTM_GATES; k++) {
            kl_matvec_s16_s32(m->w[k], buffers->xn, 0, preact + k * hidden);
            kl_matvec_s16_s32(m->u[k], h, 1, preact + k * hidden);
        }
        if (fast) {
            kl_lstm_update_fast(m, &plan, preact, buffers->cell, h);
        } else {
            kl_lstm_update_reference(m, preact, buffers->cell, h);
        }
        kl_recurrent_accumulate(m->readout, m->hidden_size, h, buffers->sum);
    }
    kl_recurrent_finish(m->readout, m->hidden_size, m->inv_steps, buffers->sum, h);
}
