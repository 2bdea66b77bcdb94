/*
 * kl_rbf.h - Gaussian RBF similarities to prototypes (ProtoNN's kernel layer):
 *   y[j] = exp(-gamma^2 ||x - b_j||^2) in Q14, j = 0 .. count-1.
 * x int16 [dims] in Q(x); prototypes int8/int16 [count][dims] (dense rows) in Q(b);
 * gamma2 = gamma^2 in Q(g). With a = min(x, b): shift_x = x - a >= 0, shift_b = b - a >= 0
 * bring both to Q(a); the squared distance D is exact (uint32 squares, an int64 sum; dims <=
 * 255); u = shift_round(D * gamma2, shift_u) in Q8 with shift_u = 2a + g - 8 (for shift_u <= 0,
 * u = min(D * gamma2, 3072) * 2^-shift_u); kl_exp_neg_q8(u) gives the output. Error bound and
 * tables: kiloml.ops.rbf (the numpy twin). No scratch; every product stays within 32 bits or
 * is computed in int64, so the kernel is the same with a 16-bit int.
 */
#ifndef KL_RBF_H
#define KL_RBF_H

#include <stdint.h>

typedef struct {
    const void *prototypes;
    uint16_t count;
    uint16_t dims;
    uint8_t value_bits;
    int8_t shift_x;
    int8_t shift_b;
    int8_t shift_u;
    int16_t gamma2;
} kl_rbf_params_t;

/* exp(-u / 256) in Q14 for u >= 0 (0 for u >= 12 * 256). */
int16_t kl_exp_neg_q8(int32_t u);

/* y[0 .. count-1] from x[0 .. dims-1]. */
void kl_rbf_s16(const kl_rbf_params_t *p, const int16_t *x, int16_t *y);

#endif /* KL_RBF_H */
