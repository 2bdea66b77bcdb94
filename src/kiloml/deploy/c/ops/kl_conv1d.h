/*
 * kl_conv1d.h - 1-D convolution over time with zero padding, stride, bias and a fused
 * activation, on time-major int16 activations.
 *
 * x int16 [in_steps][in_channels] in Q(in); y int16 [out_steps][out_channels] in Q(out),
 * out_channels = weight->rows. The weight is a kl_matrix_t [out_channels][kernel * in_channels]
 * in Q(w) (any storage kl_matvec reads), row o holding w[o][c][k] at k * in_channels + c, so
 * the window of output step t, x[t * stride - pad_left + k][c] for k < kernel (zero outside
 * 0 .. in_steps - 1), is kernel * in_channels consecutive values of x:
 *
 *   y[t][o] = clamp(sat32(shift_round(W[o] . window_t, weight->shift))
 *                   + shift_round(b[o], bias.shift), act_min, act_max)
 *
 * with weight->shift = w + in - out and bias.shift = b - out (b int8/int16 in Q(b)). Products
 * and sums are exact (kl_matvec); the output stage is kl_bias_act.h. The number of padded
 * steps on the right is implied by out_steps. Numpy twin: kiloml.ops.conv1d.
 *
 * Scratch: acc int32 [out_channels]; window int16 [kernel * in_channels] when there is padding
 * (windows inside x are read in place; the others are copied there with their zeros), else it
 * may be 0.
 */
#ifndef KL_CONV1D_H
#define KL_CONV1D_H

#include <stdint.h>

#include "kl_bias_act.h"
#include "kl_matvec.h"

typedef struct {
    const kl_matrix_t *weight; /* [out_channels][kernel * in_channels] */
    kl_vector_t bias;          /* [out_channels], read into Q(out) */
    int16_t act_min;
    int16_t act_max;
    uint16_t in_steps;
    uint16_t in_channels;
    uint16_t out_steps;
    uint16_t kernel;
    uint16_t stride;
    uint16_t pad_left;
} kl_conv1d_params_t;

void kl_conv1d_s16(const kl_conv1d_params_t *p, const int16_t *x, int16_t *window,
                   int32_t *acc, int16_t *y);

#endif /* KL_CONV1D_H */
