/*
 * kl_projection.h - sparse projection with an int16 output (ProtoNN's W, Bonsai's Z, with the
 * input normalisation folded in):
 *   p[j] = sat16(sat32(shift_round(W[j] . x, weight->shift)) + shift_round(b[j], bias.shift))
 * W int8/int16 [rows][cols] in any kl_matrix_t storage (CSR when sparse), x int16 [cols] in
 * Q(in), b int16 [rows] (it carries a folded mean); p in Q(out) = Q(w) + Q(in) - weight->shift.
 * Products and sums are exact (int64). No scratch. Numpy twin: kiloml.ops.projection.
 */
#ifndef KL_PROJECTION_H
#define KL_PROJECTION_H

#include <stdint.h>

#include "kl_matvec.h"

typedef struct {
    const kl_matrix_t *weight;
    kl_vector_t bias;
} kl_projection_params_t;

/* p[0 .. weight->rows-1] from x[0 .. weight->cols-1]. */
void kl_projection_s16_s16(const kl_projection_params_t *p, const int16_t *x, int16_t *y);

#endif /* KL_PROJECTION_H */
