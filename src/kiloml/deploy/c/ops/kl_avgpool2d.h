/*
 * kl_avgpool2d.h - average pooling over a [channels][height][width] int8 map, kernel_h x
 * kernel_w windows without padding.
 *
 * x int8 [channels][in_height][in_width] in Q(in); y int8 [channels][out_height][out_width]
 * in Q(in):
 *
 *   y[c][i][j] = shift_round(sum_{u,v} x[c][i*stride_h + u][j*stride_w + v] * inv, 30)
 *
 * with inv = round(2^30 / (kernel_h * kernel_w)); the sum is exact in int32 and the product
 * in int64, and the mean lies in int8. No scratch. Numpy twin: kiloml.ops.avgpool2d.
 */
#ifndef KL_AVGPOOL2D_H
#define KL_AVGPOOL2D_H

#include <stdint.h>

typedef struct {
    int32_t inv;
    uint16_t channels;
    uint16_t in_height;
    uint16_t in_width;
    uint16_t out_height;
    uint16_t out_width;
    uint8_t kernel_h;
    uint8_t kernel_w;
    uint8_t stride_h;
    uint8_t stride_w;
} kl_avgpool2d_params_t;

void kl_avgpool2d_s8(const kl_avgpool2d_params_t *p, const int8_t *x, int8_t *y);

#endif /* KL_AVGPOOL2D_H */
