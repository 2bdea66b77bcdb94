/* kl_pointwise_conv1d.c - see kl_pointwise_conv1d.h. */
#include "kl_pointwise_conv1d.h"

void kl_pointwise_conv1d_s16(const kl_pointwise_conv1d_params_t *p, const int16_t *x,
                             int32_t *acc, int16_t *y)
{
    const uint32_t in_channels = p->weight->cols;
    const uint16_t out_channels = p->weight->rows;
    uint32_t t;
    for (t = 0; t < p->steps; t++) {
        kl_matvec_s16_s32(p->weight, x + t * in_channels, 0, acc);
        kl_bias_act_s32_s16(acc, &p->bias, out_channels, p->act_min, p->act_max,
                            y + t * out_channels);
    }
}
