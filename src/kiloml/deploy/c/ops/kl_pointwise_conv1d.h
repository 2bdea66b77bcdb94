/*
 * kl_pointwise_conv1d.h - pointwise (1x1) convolution: one matrix applied to every time step,
 * with bias and a fused activation, on time-major int16 activations.
 *
 * x int16 [steps][in_channels] in Q(in), in_channels = weight->cols; y int16
 * [steps][out_channels] in Q(out), out_channels = weight->rows; weight a kl_matrix_t in Q(w)
 * (any storage kl_matvec reads):
 *
 *   y[t][o] = clamp(sat32(shift_round(W[o] . x[t], weight->shift))
 *                   + shift_round(b[o], bias.shift), act_min, act_max)
 *
 * with weight->shift = w + in - out and bias.shift = b - out (b int8/int16 in Q(b)). Products
 * and sums are exact (kl_matvec); the output stage is kl_bias_act.h. Scratch: acc int32
 * [out_channels]. Numpy twin: kiloml.ops.pointwise_conv1d.
 */
#ifndef KL_POINTWISE_CONV1D_H
#define KL_POINTWISE_CONV1D_H

#include <stdint.h>

#include "kl_bias_act.h"
#include "kl_matvec.h"

typedef struct {
    const kl_matrix_t *weight; /* [out_channels][in_channels] */
    kl_vector_t bias;          /* [out_channels], read into Q(out) */
    int16_t act_min;
    int16_t act_max;
    uint16_t steps;
} kl_pointwise_conv1d_params_t;

void kl_pointwise_conv1d_s16(const kl_pointwise_conv1d_params_t *p, const int16_t *x,
                             int32_t *acc, int16_t *y);

#endif /* KL_POINTWISE_CONV1D_H */
