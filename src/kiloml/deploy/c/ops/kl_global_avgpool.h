/*
 * kl_global_avgpool.h - global average pooling over time: the mean of every channel.
 *
 * x int16 [steps][channels] (time-major) in Q(in); y int16 [channels] in Q(out):
 *
 *   y[c] = sat16(shift_round(sum_t x[t][c] * inv_steps, shift))
 *
 * with inv_steps = round(2^30 / steps) and shift = 30 + in - out. The sum is exact in int32
 * (steps <= 65535, so |sum| <= 65535 * 32768 < 2^31) and the product in int64 (< 2^61).
 * No scratch. Numpy twin: kiloml.ops.global_avgpool.
 */
#ifndef KL_GLOBAL_AVGPOOL_H
#define KL_GLOBAL_AVGPOOL_H

#include <stdint.h>

typedef struct {
    uint16_t steps;
    uint16_t channels;
    int32_t inv_steps;
    int8_t shift;
} kl_global_avgpool_params_t;

void kl_global_avgpool_s16(const kl_global_avgpool_params_t *p, const int16_t *x, int16_t *y);

#endif /* KL_GLOBAL_AVGPOOL_H */
