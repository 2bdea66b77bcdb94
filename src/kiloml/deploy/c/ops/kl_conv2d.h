/*
 * kl_conv2d.h - 2-D convolution over a [channels][height][width] map: int8 weights, int32
 * sums, per-output-channel requantization to int8 with a fused activation (e.g. the 3x3
 * stride-2 stem of a MobileNetV2).
 *
 * x int8 (kl_conv2d_s8) or int16 (kl_conv2d_s16) [in_channels][in_height][in_width] in
 * Q(in); y int8 [out_channels][out_height][out_width] in Q(out); weight int8
 * [out_channels][in_channels][kernel_h][kernel_w], one real scale per output channel:
 *
 *   y[o][i][j] = clamp(shift_round(sat32(sum_{c,u,v} w[o][c][u][v]
 *                                        * x[c][i*stride_h - pad_top + u]
 *                                           [j*stride_w - pad_left + v]
 *                                        + bias[o]) * mult[o], shift[o]), act_min, act_max)
 *
 * with x zero outside the map (the output stage is kl_requantize.h). Only the taps inside the
 * map are read (each window's tap range is computed once). The int32 sum is exact:
 * in_channels * kernel_h * kernel_w <= 516 for an int16 input (|w x| <= 127 * 2^15). No
 * scratch. Numpy twin: kiloml.ops.conv2d.
 */
#ifndef KL_CONV2D_H
#define KL_CONV2D_H

#include <stdint.h>

#include "kl_requantize.h"

typedef struct {
    const int8_t *weight; /* [out_channels][in_channels][kernel_h][kernel_w] */
    const int32_t *bias;  /* [out_channels], in the scale of the sums */
    const int32_t *mult;  /* [out_channels] */
    const int8_t *shift;  /* [out_channels], 1 .. 62 */
    int8_t act_min;
    int8_t act_max;
    uint16_t in_channels;
    uint16_t out_channels;
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
} kl_conv2d_params_t;

void kl_conv2d_s8(const kl_conv2d_params_t *p, const int8_t *x, int8_t *y);
void kl_conv2d_s16(const kl_conv2d_params_t *p, const int16_t *x, int8_t *y);

#endif /* KL_CONV2D_H */
