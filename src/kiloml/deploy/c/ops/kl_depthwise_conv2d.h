/*
 * kl_depthwise_conv2d.h - depthwise 2-D convolution: one kernel_h x kernel_w kernel per
 * channel of a [channels][height][width] int8 map, int32 sums, per-channel requantization to
 * int8 with a fused activation (MobileNetV2's 3x3 depthwise layers, stride 1 or 2).
 *
 * x int8 [channels][in_height][in_width] in Q(in); y int8 [channels][out_height][out_width]
 * in Q(out); weight int8 [channels][kernel_h][kernel_w], one real scale per channel:
 *
 *   y[c][i][j] = clamp(shift_round(sat32(sum_{u,v} w[c][u][v]
 *                                        * x[c][i*stride_h - pad_top + u]
 *                                           [j*stride_w - pad_left + v]
 *                                        + bias[c]) * mult[c], shift[c]), act_min, act_max)
 *
 * with x zero outside the map (kl_requantize.h). Only the taps inside the map are read; in
 * fast builds a 3x3 window wholly inside the map has its nine taps written out. The int32 sum
 * is exact (kernel sides <= 11: at most 121 * 127 * 128 < 2^31). No scratch. Numpy twin:
 * kiloml.ops.depthwise_conv2d.
 */
#ifndef KL_DEPTHWISE_CONV2D_H
#define KL_DEPTHWISE_CONV2D_H

#include <stdint.h>

#include "kl_requantize.h"

typedef struct {
    const int8_t *weight; /* [channels][kernel_h][kernel_w] */
    const int32_t *bias;  /* [channels], in the scale of the sums */
    const int32_t *mult;  /* [channels] */
    const int8_t *shift;  /* [channels], 1 .. 62 */
    int8_t act_min;
    int8_t act_max;
    uint16_t channels;
    uint16_t in_height;
    uint16_t in_width;
    uint16_t out_height;
    uint16_t out_width;
    uint8_t kernel_h;
    uint8_t kernel_w;
    uint8_t stride_h;
    uint8_t stride_w;
    uint8_t pad_top;
    uint8_t pad_left;
} kl_depthwise_conv2d_params_t;

void kl_depthwise_conv2d_s8(const kl_depthwise_conv2d_params_t *p, const int8_t *x, int8_t *y);

#endif /* KL_DEPTHWISE_CONV2D_H */
