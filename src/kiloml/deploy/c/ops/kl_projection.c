/* kl_projection.c - see kl_projection.h. */
#include "kl_projection.h"

#include "kl_fixed.h"

void kl_projection_s16_s16(const kl_projection_params_t *p, const int16_t *x, int16_t *y)
{
    uint16_t j;
#if KL_DESCRIPTORS_IN_FLASH
    kl_projection_params_t params;
    kl_matrix_t weight;
    p = kl_flash_copy(&params, p, sizeof params);
    params.weight = kl_flash_copy(&weight, params.weight, sizeof weight);
#endif
    for (j = 0; j < p->weight->rows; j++) {
        int64_t product = kl_shift_round_s64(kl_matrix_row_dot(p->weight, j, x),
                                             p->weight->shift);
        y[j] = kl_sat16((int64_t)kl_sat32(product) + kl_vector_get(&p->bias, j));
    }
}
