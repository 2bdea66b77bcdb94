/*
 * kl_activation_layer.c - see kl_activation_layer.h.
 *
 * The input rescaling is prepared once per call (kl_activation_prepare) and each kind has its
 * own loop, so the kind is a constant inside it. Defining KL_REFERENCE calls
 * kl_activation_s16 per element instead; both give the same integers.
 */
#include "kl_activation_layer.h"

#ifndef KL_REFERENCE
/* y[i] = f(x[i]) for the constant kind (after inlining). */
KL_ALWAYS_INLINE void kl_activation_loop(uint8_t kind, const kl_activation_plan_t *plan,
                                         const int16_t *x, int16_t *y, uint32_t count)
{
    uint32_t i;
    for (i = 0; i < count; i++) {
        y[i] = (int16_t)kl_activation_planned(kind, x[i], plan);
    }
}
#endif

void kl_activation_layer_s16(const kl_activation_layer_params_t *p, const int16_t *x,
                             int16_t *y)
{
#ifdef KL_REFERENCE
    uint32_t i;
    for (i = 0; i < p->count; i++) {
        y[i] = kl_activation_s16(p->kind, x[i], p->frac_bits);
    }
#else
    kl_activation_plan_t plan;
    kl_activation_prepare(&plan, p->kind, p->frac_bits);
    switch (p->kind) {
    case KL_SIGMOID:
        kl_activation_loop(KL_SIGMOID, &plan, x, y, p->count);
        break;
    case KL_TANH:
        kl_activation_loop(KL_TANH, &plan, x, y, p->count);
        break;
    case KL_QUANT_SIGM:
        kl_activation_loop(KL_QUANT_SIGM, &plan, x, y, p->count);
        break;
    case KL_QUANT_TANH:
        kl_activation_loop(KL_QUANT_TANH, &plan, x, y, p->count);
        break;
    default:
        kl_activation_loop(KL_RELU, &plan, x, y, p->count);
        break;
    }
#endif
}
