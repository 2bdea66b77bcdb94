/* kl_fc.c - see kl_fc.h. */
#include "kl_fc.h"

#include "kl_fixed.h"

void kl_fc_s16_s32(const kl_fc_params_t *p, const int16_t *x, int32_t *y)
{
    uint16_t j;
#if KL_DESCRIPTORS_IN_FLASH
    kl_fc_params_t params;
    kl_matrix_t weight;
    p = kl_flash_copy(&params, p, sizeof params);
    params.weight = kl_flash_copy(&weight, params.weight, sizeof weight);
#endif
    kl_matvec_s16_s32(p->weight, x, 0, y);
    for (j = 0; j < p->weight->rows; j++) {
        y[j] = kl_sat32((int64_t)y[j] + kl_vector_get(&p->bias, j));
    }
}
