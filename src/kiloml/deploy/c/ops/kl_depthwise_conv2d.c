/* kl_depthwise_conv2d.c - see kl_depthwise_conv2d.h. */
#include "kl_depthwise_conv2d.h"

#include "kl_window2d.h"

/* The sum of taps rows.k0 .. rows.k1 - 1 x cols.k0 .. cols.k1 - 1 of the kernel w of one
 * channel, x at the map's plane of that channel. */
static int32_t kl_depthwise2d_taps(const kl_depthwise_conv2d_params_t *p, const int8_t *w,
                                   const int8_t *x, const kl_taps_t *rows, const kl_taps_t *cols)
{
    const uint32_t kw = p->kernel_w;
    const uint32_t width = p->in_width;
    const int8_t *xr = x + rows->first * width + cols->first;
    const int8_t *wr = w + rows->k0 * kw + cols->k0;
    const uint32_t count = cols->k1 - cols->k0;
    int32_t sum = 0;
    uint32_t u;
    for (u = rows->k0; u < rows->k1; u++, xr += width, wr += kw) {
        uint32_t v;
        for (v = 0; v < count; v++) {
            sum += KL_READ_S8(&wr[v]) * xr[v];
        }
    }
    return sum;
}

#ifndef KL_REFERENCE
/* The nine taps of a 3x3 window wholly inside the map, whose top left is x. */
static inline int32_t kl_depthwise2d_3x3(const int8_t *w, const int8_t *x, uint32_t width)
{
    const int8_t *x1 = x + width;
    const int8_t *x2 = x1 + width;
    return KL_READ_S8(&w[0]) * x[0] + KL_READ_S8(&w[1]) * x[1] + KL_READ_S8(&w[2]) * x[2]
           + KL_READ_S8(&w[3]) * x1[0] + KL_READ_S8(&w[4]) * x1[1] + KL_READ_S8(&w[5]) * x1[2]
           + KL_READ_S8(&w[6]) * x2[0] + KL_READ_S8(&w[7]) * x2[1] + KL_READ_S8(&w[8]) * x2[2];
}
#endif

void kl_depthwise_conv2d_s8(const kl_depthwise_conv2d_params_t *p, const int8_t *x, int8_t *y)
{
    const uint32_t kh = p->kernel_h;
    const uint32_t kw = p->kernel_w;
    const uint32_t plane = (uint32_t)p->in_height * p->in_width;
#ifndef KL_REFERENCE
    const int three = kh == 3 && kw == 3;
#endif
    uint32_t c;
    for (c = 0; c < p->channels; c++, x += plane) {
        const kl_channel_t ch = kl_channel(p->bias, p->mult, p->shift, c);
        const int8_t *w = p->weight + c * kh * kw;
        uint32_t i;
        for (i = 0; i < p->out_height; i++) {
            const kl_taps_t rows = kl_taps(i, p->stride_h, p->pad_top, kh, p->in_height);
            uint32_t j;
            for (j = 0; j < p->out_width; j++, y++) {
                const kl_taps_t cols = kl_taps(j, p->stride_w, p->pad_left, kw, p->in_width);
                int32_t sum;
#ifndef KL_REFERENCE
                if (three && rows.k1 - rows.k0 == 3 && cols.k1 - cols.k0 == 3) {
                    sum = kl_depthwise2d_3x3(w, x + rows.first * p->in_width + cols.first,
                                             p->in_width);
                } else {
                    sum = kl_depthwise2d_taps(p, w, x, &rows, &cols);
                }
#else
                sum = kl_depthwise2d_taps(p, w, x, &rows, &cols);
#endif
                *y = kl_clamp_s8(kl_requantize_s64(sum, &ch), p->act_min, p->act_max);
            }
        }
    }
}
