/* kl_maxpool2d.c - see kl_maxpool2d.h. */
#include "kl_maxpool2d.h"

#include "kl_window2d.h"

void kl_maxpool2d_s8(const kl_maxpool2d_params_t *p, const int8_t *x, int8_t *y)
{
    const uint32_t width = p->in_width;
    const uint32_t plane = (uint32_t)p->in_height * width;
    uint32_t c;
    for (c = 0; c < p->channels; c++, x += plane) {
        uint32_t i;
        for (i = 0; i < p->out_height; i++) {
            const kl_taps_t rows = kl_taps(i, p->stride_h, p->pad_top, p->kernel_h,
                                           p->in_height);
            uint32_t j;
            for (j = 0; j < p->out_width; j++, y++) {
                const kl_taps_t cols = kl_taps(j, p->stride_w, p->pad_left, p->kernel_w, width);
                const int8_t *xr = x + rows.first * width + cols.first;
                int8_t best = INT8_MIN;
                uint32_t u;
                for (u = rows.k0; u < rows.k1; u++, xr += width) {
                    uint32_t v;
                    for (v = 0; v < cols.k1 - cols.k0; v++) {
                        best = xr[v] > best ? xr[v] : best;
                    }
                }
                *y = best;
            }
        }
    }
}
