/* kl_conv2d.c - see kl_conv2d.h. */
#include "kl_conv2d.h"

#include "kl_window2d.h"

/* The convolution with an int8 (wide 0) or int16 (wide 1) input; wide is a constant where
 * this is inlined. */
KL_ALWAYS_INLINE void kl_conv2d_body(const kl_conv2d_params_t *p, const void *x, int wide,
                                     int8_t *y)
{
    const uint32_t in_channels = p->in_channels;
    const uint32_t kh = p->kernel_h;
    const uint32_t kw = p->kernel_w;
    const uint32_t plane = (uint32_t)p->in_height * p->in_width;
    uint32_t o;
    for (o = 0; o < p->out_channels; o++) {
        const kl_channel_t ch = kl_channel(p->bias, p->mult, p->shift, o);
        const int8_t *wo = p->weight + o * in_channels * kh * kw;
        uint32_t i;
        for (i = 0; i < p->out_height; i++) {
            const kl_taps_t rows = kl_taps(i, p->stride_h, p->pad_top, kh, p->in_height);
            uint32_t j;
            for (j = 0; j < p->out_width; j++, y++) {
                const kl_taps_t cols = kl_taps(j, p->stride_w, p->pad_left, kw, p->in_width);
                /* offset of the first tap inside the map, in a channel's plane */
                const uint32_t first = rows.first * p->in_width + cols.first;
                int32_t sum = 0;
                uint32_t c;
                for (c = 0; c < in_channels; c++) {
                    const int8_t *wc = wo + c * kh * kw + rows.k0 * kw + cols.k0;
                    uint32_t u;
                    for (u = rows.k0; u < rows.k1; u++, wc += kw) {
                        const uint32_t at = c * plane + first + (u - rows.k0) * p->in_width;
                        uint32_t v;
                        if (wide) {
                            const int16_t *xr = (const int16_t *)x + at;
                            for (v = 0; v < cols.k1 - cols.k0; v++) {
                                sum += KL_READ_S8(&wc[v]) * xr[v];
                            }
                        } else {
                            const int8_t *xr = (const int8_t *)x + at;
                            for (v = 0; v < cols.k1 - cols.k0; v++) {
                                sum += KL_READ_S8(&wc[v]) * xr[v];
                            }
                        }
                    }
                }
                *y = kl_clamp_s8(kl_requantize_s64(sum, &ch), p->act_min, p->act_max);
            }
        }
    }
}

void kl_conv2d_s8(const kl_conv2d_params_t *p, const int8_t *x, int8_t *y)
{
    kl_conv2d_body(p, x, 0, y);
}

void kl_conv2d_s16(const kl_conv2d_params_t *p, const int16_t *x, int8_t *y)
{
    kl_conv2d_body(p, x, 1, y);
}
