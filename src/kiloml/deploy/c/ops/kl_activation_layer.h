/*
 * kl_activation_layer.h - an elementwise non-linearity over a buffer:
 *   y[i] = f(x[i]) for i < count,
 * x int16 in Q(frac_bits), 0 <= frac_bits <= 24; y int16 in Q15 (sigmoid, tanh, quantSigm,
 * quantTanh) or Q(frac_bits) (relu), exactly as kl_activation_s16 (kl_activation.h). y may be
 * x. Numpy twin: kiloml.ops.activation_layer.
 */
#ifndef KL_ACTIVATION_LAYER_H
#define KL_ACTIVATION_LAYER_H

#include <stdint.h>

#include "kl_activation.h"

typedef struct {
    uint8_t kind;      /* kl_activation_t */
    uint8_t frac_bits; /* Q-format of x */
    uint32_t count;
} kl_activation_layer_params_t;

void kl_activation_layer_s16(const kl_activation_layer_params_t *p, const int16_t *x,
                             int16_t *y);

#endif /* KL_ACTIVATION_LAYER_H */
