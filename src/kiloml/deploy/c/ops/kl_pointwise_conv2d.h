/*
 * kl_pointwise_conv2d.h - pointwise (1x1) 2-D convolution over a [channels][height][width]
 * int8 map with an optional residual add: int8 weights, int32 sums, per-output-channel
 * requantization to int8 (MobileNetV2's expansion and projection layers).
 *
 * x int8 [in_channels][pixels] in Q(in) (pixels = height * width); r int8
 * [out_channels][pixels] in Q(r) or NULL; y int8 [out_channels][pixels] in Q(out); weight
 * int8 [out_channels][in_channels], one real scale per output channel:
 *
 *   y[o][p] = clamp(shift_round(sat32(sum_c w[o][c] * x[c][p] + bias[o]) * mult[o], shift[o])
 *                   + shift_round(r[o][p], shift_residual), act_min, act_max)
 *
 * with shift_residual = r - out (|shift_residual| <= 15) and no second term when r is NULL
 * (kl_requantize.h). The int32 sum is exact (in_channels <= 65535, |w x| <= 127 * 128). Fast
 * builds compute four pixels per pass over a weight row. No scratch. Numpy twin:
 * kiloml.ops.pointwise_conv2d.
 */
#ifndef KL_POINTWISE_CONV2D_H
#define KL_POINTWISE_CONV2D_H

#include <stdint.h>

#include "kl_requantize.h"

typedef struct {
    const int8_t *weight; /* [out_channels][in_channels] */
    const int32_t *bias;  /* [out_channels], in the scale of the sums */
    const int32_t *mult;  /* [out_channels] */
    const int8_t *shift;  /* [out_channels], 1 .. 62 */
    int8_t act_min;
    int8_t act_max;
    uint16_t in_channels;
    uint16_t out_channels;
    uint16_t pixels;
    int8_t shift_residual;
} kl_pointwise_conv2d_params_t;

void kl_pointwise_conv2d_s8(const kl_pointwise_conv2d_params_t *p, const int8_t *x,
                            const int8_t *r, int8_t *y);

#endif /* KL_POINTWISE_CONV2D_H */
