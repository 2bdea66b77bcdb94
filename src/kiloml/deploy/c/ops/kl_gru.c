/*
 * kl_gru.c - integer torch.nn.GRU over a sequence (see kl_gru.h).
 *
 * The per-step work after the matrix products (gates and state update) has two
 * implementations that compute the same integers: the reference (int64, straight from the
 * equations in kl_gru.h) and a fast one in 32-bit arithmetic with one 64-bit sum per hidden
 * unit, used when the model's constants pass kl_gru_plan (every model the quantizer produces
 * does). Defining KL_REFERENCE at compile time forces the reference (the tests run both).
 */
#include "kl_gru.h"

#include "kl_activation.h"
#include "kl_fixed.h"

#ifdef KL_REFERENCE
#define KL_FAST 0
#else
#define KL_FAST 1
#endif

enum { KL_GRU_R, KL_GRU_Z, KL_GRU_N };
enum { KL_GRU_BIAS_R, KL_GRU_BIAS_Z, KL_GRU_BIAS_IN, KL_GRU_BIAS_HN };

/* The equations of kl_gru.h in int64. r, z, n are Q15 and |hn| <= 2^15, so r hn and the two
 * blend products are below 2^30 in magnitude. */
static void kl_gru_update_reference(const kl_gru_params_t *m, const int32_t *preact, int16_t *h)
{
    const uint16_t hidden = m->hidden_size;
    const int32_t *pre_r = preact;
    const int32_t *pre_z = preact + hidden;
    const int32_t *pre_in = preact + 2 * (uint32_t)hidden;
    const int32_t *pre_hn = preact + 3 * (uint32_t)hidden;
    uint16_t j;
    for (j = 0; j < hidden; j++) {
        int32_t r = kl_sigmoid_s16_q15(
            kl_sat16(pre_r[j] + kl_vector_get(&m->bias[KL_GRU_BIAS_R], j)),
            m->pre_frac_bits[KL_GRU_R]);
        int32_t z = kl_sigmoid_s16_q15(
            kl_sat16(pre_z[j] + kl_vector_get(&m->bias[KL_GRU_BIAS_Z], j)),
            m->pre_frac_bits[KL_GRU_Z]);
        int32_t hn = kl_sat16(pre_hn[j] + kl_vector_get(&m->bias[KL_GRU_BIAS_HN], j));
        int64_t pre_n = pre_in[j] + kl_vector_get(&m->bias[KL_GRU_BIAS_IN], j) +
                        kl_shift_round_s64((int64_t)(r * hn), m->reset_shift);
        int32_t n = kl_tanh_s16_q15(kl_sat16(pre_n), m->pre_frac_bits[KL_GRU_N]);
        h[j] = kl_blend_reference(&m->update, 32768 - z, n, z, h[j]);
    }
}

/* Constants of the fast update, prepared once per inference. */
typedef struct {
    kl_activation_plan_t act[KL_GRU_GATES];
    kl_bias_plan_t bias[4];
    kl_blend_plan_t update;
} kl_gru_plan_t;

/* Fill plan and return 1 when the fast update equals the reference for m: activation inputs in
 * Q0..Q24 (kl_activation_planned), bias shifts in -14..30 (kl_bias_prepare: |b| <= 2^29),
 * 1 <= reset_shift <= 31 (kl_round_shift_pos_s32 of |r hn| < 2^30 gives |rh| <= 2^29, so
 * kl_sat16_add3_s32 applies), a blend kl_blend_prepare accepts, and b_in and b_hn of one
 * width. */
static int kl_gru_plan(const kl_gru_params_t *m, kl_gru_plan_t *p)
{
    int i;
    if (m->reset_shift < 1 || m->reset_shift > 31 || !kl_blend_prepare(&p->update, &m->update)) {
        return 0;
    }
    for (i = 0; i < KL_GRU_GATES; i++) {
        if (m->pre_frac_bits[i] > 24) {
            return 0;
        }
        kl_activation_prepare(&p->act[i], i == KL_GRU_N ? KL_TANH : KL_SIGMOID,
                              m->pre_frac_bits[i]);
    }
    for (i = 0; i < 4; i++) {
        if (!kl_bias_prepare(&p->bias[i], &m->bias[i])) {
            return 0;
        }
    }
    return m->bias[KL_GRU_BIAS_IN].value_bits == m->bias[KL_GRU_BIAS_HN].value_bits;
}

/* hn, n and h of every unit from the gates r and z (Q15, in their preact slots); narrow (int8
 * biases) is a constant where this is inlined. */
KL_ALWAYS_INLINE void kl_gru_state_fast(const kl_gru_params_t *m, const kl_gru_plan_t *p,
                                        const int32_t *preact, int16_t *h, int narrow)
{
    const uint32_t hidden = m->hidden_size;
    const int32_t *r = preact;
    const int32_t *z = preact + hidden;
    const int32_t *pre_in = preact + 2 * hidden;
    const int32_t *pre_hn = preact + 3 * hidden;
    const void *b_in = m->bias[KL_GRU_BIAS_IN].values;
    const void *b_hn = m->bias[KL_GRU_BIAS_HN].values;
    const kl_bias_plan_t in = p->bias[KL_GRU_BIAS_IN];
    const kl_bias_plan_t hn_plan = p->bias[KL_GRU_BIAS_HN];
    const int reset_shift = m->reset_shift;
    uint32_t j;
    for (j = 0; j < hidden; j++) {
        int32_t bias_in = narrow ? ((const int8_t *)b_in)[j] : ((const int16_t *)b_in)[j];
        int32_t bias_hn = narrow ? ((const int8_t *)b_hn)[j] : ((const int16_t *)b_hn)[j];
        int32_t hn = kl_sat16_add_s32(
            pre_hn[j], (bias_hn * hn_plan.mul + hn_plan.add) >> hn_plan.rshift);
        int32_t rh = kl_round_shift_pos_s32(r[j] * hn, reset_shift);
        int32_t n = kl_activation_planned(
            KL_TANH, kl_sat16_add3_s32(pre_in[j], (bias_in * in.mul + in.add) >> in.rshift, rh),
            &p->act[KL_GRU_N]);
        h[j] = kl_blend_fast(&p->update, 32768 - z[j], n, z[j], h[j]);
    }
}

/* r and z by kl_gate_sigmoid_s32, in place in their preact slots; then per unit hn, n and h. */
static KL_NOINLINE void kl_gru_update_fast(const kl_gru_params_t *m, const kl_gru_plan_t *p,
                                           int32_t *preact, int16_t *h)
{
    const uint32_t hidden = m->hidden_size;
    kl_gate_sigmoid_s32(preact, &m->bias[KL_GRU_BIAS_R], &p->bias[KL_GRU_BIAS_R],
                        &p->act[KL_GRU_R], hidden);
    kl_gate_sigmoid_s32(preact + hidden, &m->bias[KL_GRU_BIAS_Z], &p->bias[KL_GRU_BIAS_Z],
                        &p->act[KL_GRU_Z], hidden);
    if (m->bias[KL_GRU_BIAS_IN].value_bits == 8) {
        kl_gru_state_fast(m, p, preact, h, 1);
    } else {
        kl_gru_state_fast(m, p, preact, h, 0);
    }
}

void kl_gru_s16(const kl_gru_params_t *m, const int16_t *x, const kl_gru_buffers_t *buffers,
                int16_t *h)
{
    const uint16_t features = m->norm.features;
    const uint32_t hidden = m->hidden_size;
    int32_t *preact = buffers->preact;
    kl_gru_plan_t plan;
    int fast;
    uint16_t t;
    fast = KL_FAST && kl_gru_plan(m, &plan);
    kl_recurrent_start(m->readout, m->hidden_size, h, buffers->sum);
    for (t = 0; t < m->steps; t++) {
        kl_normalize_frame_s16(&m->norm, x + (uint32_t)t * features, buffers->xn);
        kl_matvec_s16_s32(m->w[KL_GRU_R], buffers->xn, 0, preact);
        kl_matvec_s16_s32(m->w[KL_GRU_Z], buffers->xn, 0, preact + hidden);
        kl_matvec_s16_s32(m->w[KL_GRU_N], buffers->xn, 0, preact + 2 * hidden);
        kl_matvec_s16_s32(m->u[KL_GRU_R], h, 1, preact);
        kl_matvec_s16_s32(m->u[KL_GRU_Z], h, 1, preact + hidden);
        kl_matvec_s16_s32(m->u[KL_GRU_N], h, 0, preact + 3 * hidden);
        if (fast) {
            kl_gru_update_fast(m, &plan, preact, h);
        } else {
            kl_gru_update_reference(m, preact, h);
        }
        kl_recurrent_accumulate(m->readout, m->hidden_size, h, buffers->sum);
    }
    kl_recurrent_finish(m->readout, m->hidden_size, m->inv_steps, buffers->sum, h);
}
