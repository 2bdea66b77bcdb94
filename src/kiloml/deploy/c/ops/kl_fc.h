/*
 * kl_fc.h - fully connected layer with an int32 output:
 *   y[j] = sat32(sat32(shift_round(W[j] . x, weight->shift)) + shift_round(b[j], bias.shift))
 * W int8/int16 [rows][cols] in any kl_matrix_t storage, x int16 [cols], b int8/int16 [rows].
 * Products and sums are exact (int64). Numpy twin: kiloml.ops.fully_connected.
 */
#ifndef KL_FC_H
#define KL_FC_H

#include <stdint.h>

#include "kl_matvec.h"

typedef struct {
    const kl_matrix_t *weight;
    kl_vector_t bias;
} kl_fc_params_t;

/* y[0 .. weight->rows-1] from x[0 .. weight->cols-1]. */
void kl_fc_s16_s32(const kl_fc_params_t *p, const int16_t *x, int32_t *y);

#endif /* KL_FC_H */
