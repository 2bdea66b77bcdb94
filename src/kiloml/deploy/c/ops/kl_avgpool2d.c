/* kl_avgpool2d.c - see kl_avgpool2d.h. */
#include "kl_avgpool2d.h"

#include "kl_constants.h"
#include "kl_fixed.h"

void kl_avgpool2d_s8(const kl_avgpool2d_params_t *p, const int8_t *x, int8_t *y)
{
    const uint32_t width = p->in_width;
    const uint32_t plane = (uint32_t)p->in_height * width;
    uint32_t c;
    for (c = 0; c < p->channels; c++, x += plane) {
        uint32_t i;
        for (i = 0; i < p->out_height; i++) {
            uint32_t j;
            for (j = 0; j < p->out_width; j++, y++) {
                const int8_t *xr = x + i * p->stride_h * width + j * p->stride_w;
                int32_t sum = 0;
                uint32_t u;
                for (u = 0; u < p->kernel_h; u++, xr += width) {
                    uint32_t v;
                    for (v = 0; v < p->kernel_w; v++) {
                        sum += xr[v];
                    }
                }
                *y = (int8_t)kl_shift_round_s64((int64_t)sum * p->inv, KL_INV_STEPS_FRAC_BITS);
            }
        }
    }
}
