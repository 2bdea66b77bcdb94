/* kl_tree_path.c - see kl_tree_path.h. */
#include "kl_tree_path.h"

#include "kl_activation.h"
#include "kl_fixed.h"

void kl_tree_path_s16_s32(const kl_tree_path_params_t *p, const int16_t *x, int32_t *y,
                          int32_t *w_scratch, int16_t *v_scratch)
{
    uint16_t node = 0, c;
    uint8_t level;
#if KL_DESCRIPTORS_IN_FLASH
    kl_tree_path_params_t params;
    kl_matrix_t theta, w_node, v_node;
    p = kl_flash_copy(&params, p, sizeof params);
    params.theta = kl_flash_copy(&theta, params.theta, sizeof theta);
#endif
    for (c = 0; c < p->classes; c++) {
        y[c] = 0;
    }
    for (level = 0; level <= p->depth; level++) {
#if KL_DESCRIPTORS_IN_FLASH
        kl_matvec_s16_s32(kl_flash_copy(&w_node, KL_READ_PTR(&p->w[node]), sizeof w_node), x, 0,
                          w_scratch);
        kl_matvec_s16_s16(kl_flash_copy(&v_node, KL_READ_PTR(&p->v[node]), sizeof v_node), x,
                          v_scratch);
#else
        kl_matvec_s16_s32(p->w[node], x, 0, w_scratch);
        kl_matvec_s16_s16(p->v[node], x, v_scratch);
#endif
        for (c = 0; c < p->classes; c++) {
            int64_t product = (int64_t)w_scratch[c] * kl_tanh_s16_q15(v_scratch[c], p->v_frac);
            y[c] = kl_sat32((int64_t)y[c] + kl_shift_round_s64(product, p->shift_y));
        }
        if (level < p->depth) {
            node = kl_matrix_row_dot(p->theta, node, x) > 0 ? (uint16_t)(2 * node + 1)
                                                             : (uint16_t)(2 * node + 2);
        }
    }
}
