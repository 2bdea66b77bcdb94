/*
 * kl_recurrent.c - the gate passes of the gated recurrent kernels (see kl_recurrent.h).
 */
#include "kl_recurrent.h"

/* kind is a constant where this is inlined; the loop is specialised for int8 and int16
 * biases, and the plans are copied into locals that stay in registers. */
KL_ALWAYS_INLINE void kl_gate_pass(uint8_t kind, int32_t *pre, const kl_vector_t *bias,
                                   const kl_bias_plan_t *bias_plan,
                                   const kl_activation_plan_t *plan, uint32_t hidden)
{
    const int32_t mul = bias_plan->mul;
    const int32_t add = bias_plan->add;
    const int32_t rshift = bias_plan->rshift;
    const kl_activation_plan_t act = *plan;
    uint32_t j;
    if (bias->value_bits == 8) {
        const int8_t *b = (const int8_t *)bias->values;
        for (j = 0; j < hidden; j++) {
            pre[j] = kl_activation_planned(
                kind, kl_sat16_add_s32(pre[j], (b[j] * mul + add) >> rshift), &act);
        }
    } else {
        const int16_t *b = (const int16_t *)bias->values;
        for (j = 0; j < hidden; j++) {
            pre[j] = kl_activation_planned(
                kind, kl_sat16_add_s32(pre[j], (b[j] * mul + add) >> rshift), &act);
        }
    }
}

void kl_gate_sigmoid_s32(int32_t *pre, const kl_vector_t *bias, const kl_bias_plan_t *bias_plan,
                         const kl_activation_plan_t *plan, uint32_t hidden)
{
    kl_gate_pass(KL_SIGMOID, pre, bias, bias_plan, plan, hidden);
}

void kl_gate_tanh_s32(int32_t *pre, const kl_vector_t *bias, const kl_bias_plan_t *bias_plan,
                      const kl_activation_plan_t *plan, uint32_t hidden)
{
    kl_gate_pass(KL_TANH, pre, bias, bias_plan, plan, hidden);
}
