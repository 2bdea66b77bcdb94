/*
 * kl_maxpool2d.h - max pooling over a [channels][height][width] int8 map.
 *
 * x int8 [channels][in_height][in_width] in Q(in); y int8 [channels][out_height][out_width]
 * in Q(in):
 *
 *   y[c][i][j] = max_{u,v} x[c][i*stride_h - pad_top + u][j*stride_w - pad_left + v]
 *
 * over the taps inside the map (padding is at most half the kernel, so every window holds
 * one). No scratch, no constants. Numpy twin: kiloml.ops.maxpool2d.
 */
#ifndef KL_MAXPOOL2D_H
#define KL_MAXPOOL2D_H

#include <stdint.h>

typedef struct {
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
} kl_maxpool2d_params_t;

void kl_maxpool2d_s8(const kl_maxpool2d_params_t *p, const int8_t *x, int8_t *y);

#endif /* KL_MAXPOOL2D_H */
