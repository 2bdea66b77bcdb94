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
/* count consecutive outputs of a 3x3 kernel w whose windows lie wholly inside the map: the
 * first window's top left is x, the next ones stride to the right; the nine taps written
 * out with the weights in registers. */
static void kl_depthwise2d_run_3x3(const int8_t *x, uint32_t width, uint32_t stride,
                                   uint32_t count, const int8_t *w, const kl_channel_t *ch,
                                   int8_t act_min, int8_t act_max, int8_t *y)
{
    const int32_t w0 = KL_READ_S8(&w[0]), w1 = KL_READ_S8(&w[1]), w2 = KL_READ_S8(&w[2]);
    const int32_t w3 = KL_READ_S8(&w[3]), w4 = KL_READ_S8(&w[4]), w5 = KL_READ_S8(&w[5]);
    const int32_t w6 = KL_READ_S8(&w[6]), w7 = KL_READ_S8(&w[7]), w8 = KL_READ_S8(&w[8]);
    uint32_t n;
    for (n = 0; n < count; n++, x += stride) {
        const int8_t *x1 = x + width;
        const int8_t *x2 = x1 + width;
        const int32_t sum = w0 * x[0] + w1 * x[1] + w2 * x[2] + w3 * x1[0] + w4 * x1[1]
                            + w5 * x1[2] + w6 * x2[0] + w7 * x2[1] + w8 * x2[2];
        y[n] = kl_requantize_clamp(sum, ch, act_min, act_max);
    }
}
#endif

void kl_depthwise_conv2d_s8(const kl_depthwise_conv2d_params_t *p, const int8_t *x, int8_t *y)
{
    const uint32_t kh = p->kernel_h;
    const uint32_t kw = p->kernel_w;
    const uint32_t width = p->in_width;
    const uint32_t plane = (uint32_t)p->in_height * width;
    const uint32_t out_width = p->out_width;
#ifndef KL_REFERENCE
    /* a 3x3 kernel: outputs j_lo .. j_hi of a row are wholly inside the map across */
    const int three = kh == 3 && kw == 3 && width + p->pad_left >= 3;
    const uint32_t j_lo = (p->pad_left + p->stride_w - 1u) / p->stride_w;
    const uint32_t j_hi = three ? (width + p->pad_left - 3u) / p->stride_w : 0;
#endif
    uint32_t c;
    for (c = 0; c < p->channels; c++, x += plane) {
        const kl_channel_t ch = kl_channel(p->bias, p->mult, p->shift, c);
        const int8_t *w = p->weight + c * kh * kw;
        uint32_t i;
        for (i = 0; i < p->out_height; i++, y += out_width) {
            const kl_taps_t rows = kl_taps(i, p->stride_h, p->pad_top, kh, p->in_height);
            uint32_t j = 0;
            while (j < out_width) {
                kl_taps_t cols;
#ifndef KL_REFERENCE
                if (three && j == j_lo && j_lo <= j_hi && rows.k1 - rows.k0 == 3) {
                    kl_depthwise2d_run_3x3(x + rows.first * width + (j * p->stride_w
                                                                     - p->pad_left),
                                           width, p->stride_w, j_hi - j_lo + 1, w, &ch,
                                           p->act_min, p->act_max, y + j);
                    j = j_hi + 1;
                    continue;
                }
#endif
                cols = kl_taps(j, p->stride_w, p->pad_left, kw, width);
                y[j] = kl_requantize_clamp(kl_depthwise2d_taps(p, w, x, &rows, &cols), &ch,
                                           p->act_min, p->act_max);
                j++;
            }
        }
    }
}
