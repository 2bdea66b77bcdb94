/*
 * kl_depthwise_conv1d.h - depthwise 1-D convolution over time (one kernel per channel) with
 * zero padding, stride, bias and a fused activation, on time-major int16 activations.
 *
 * x int16 [in_steps][channels] in Q(in); y int16 [out_steps][channels] in Q(out); weight
 * int8/int16 (weight_bits) [channels][kernel], dense, with one power-of-two scale per channel:
 * channel c in Q(w_c), read with shift[c] = w_c + in - out:
 *
 *   y[t][c] = clamp(sat32(shift_round(sum_k w[c][k] x[t * stride - pad_left + k][c],
 *                                     shift[c]))
 *                   + shift_round(b[c], bias.shift), act_min, act_max)
 *
 * with x zero outside 0 .. in_steps - 1 and bias.shift = b - out (b int8/int16 in Q(b)). Sums
 * are exact: the fast path (int8 weights, kernel <= KL_INT8_ROW_LIMIT so |w x| <= 2^22 keeps
 * the sum in int32, a bias that fits int32; a kernel of 3 has its taps written out) rescales
 * a channel in 32 bits when its shift is in 1 .. 31, else in int64; int16 weights, and
 * -DKL_REFERENCE builds, take the exact int64 loop. The output stage is kl_bias_act.h. No scratch. Numpy twin:
 * kiloml.ops.depthwise_conv1d.
 */
#ifndef KL_DEPTHWISE_CONV1D_H
#define KL_DEPTHWISE_CONV1D_H

#include <stdint.h>

#include "kl_bias_act.h"
#include "kl_matvec.h"

typedef struct {
    const void *weight;   /* int8_t or int16_t [channels][kernel] */
    const int8_t *shift;  /* [channels]: w_c + in - out */
    uint8_t weight_bits;
    kl_vector_t bias;   /* [channels], read into Q(out) */
    int16_t act_min;
    int16_t act_max;
    uint16_t in_steps;
    uint16_t channels;
    uint16_t out_steps;
    uint16_t kernel;
    uint16_t stride;
    uint16_t pad_left;
} kl_depthwise_conv1d_params_t;

void kl_depthwise_conv1d_s16(const kl_depthwise_conv1d_params_t *p, const int16_t *x,
                             int16_t *y);

#endif /* KL_DEPTHWISE_CONV1D_H */
