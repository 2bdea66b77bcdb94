/*
 * kl_global_avgpool2d.h - global average pooling of a [channels][height][width] int8 map into
 * an int16 vector: the mean of every channel, for a classifier head.
 *
 * x int8 [channels][pixels] in Q(in) (pixels = height * width); y int16 [channels] in Q(out):
 *
 *   y[c] = sat16(shift_round(sum_p x[c][p] * inv, shift))
 *
 * with inv = round(2^30 / pixels) and shift = 30 + in - out. The sum is exact in int32
 * (pixels <= 65535) and the product in int64 (< 2^54). No scratch. Numpy twin:
 * kiloml.ops.global_avgpool2d.
 */
#ifndef KL_GLOBAL_AVGPOOL2D_H
#define KL_GLOBAL_AVGPOOL2D_H

#include <stdint.h>

typedef struct {
    uint16_t channels;
    uint16_t pixels;
    int32_t inv;
    int8_t shift;
} kl_global_avgpool2d_params_t;

void kl_global_avgpool2d_s8(const kl_global_avgpool2d_params_t *p, const int8_t *x,
                            int16_t *y);

#endif /* KL_GLOBAL_AVGPOOL2D_H */
