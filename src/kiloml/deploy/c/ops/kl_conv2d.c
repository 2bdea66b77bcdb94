/* kl_conv2d.c - see kl_conv2d.h. */
#include "kl_conv2d.h"

#include "kl_window2d.h"

/* The sum of one output's taps: rows x cols taps of each of the channels, the kernel rows at
 * w (next channel's kernel kernel_size further, next row kw further), the map's rows at x8
 * (an int8 map), or at x16 when wide (int16; next channel plane further, next row width
 * further; the other pointer is unused). three: cols is 3, the taps written out. wide and
 * three are constants where this is inlined. Products are widened to 32 bits first (16-bit
 * int on AVR). */
KL_ALWAYS_INLINE int32_t kl_conv2d_window(const int8_t *w, const int8_t *x8,
                                          const int16_t *x16, int wide, int three,
                                          uint32_t channels, uint32_t kernel_size, uint32_t kw,
                                          uint32_t plane, uint32_t width, uint32_t rows,
                                          uint32_t cols)
{
    int32_t sum = 0;
    uint32_t c;
    for (c = 0; c < channels; c++, w += kernel_size) {
        const int8_t *wr = w;
        const uint32_t plane_offset = c * plane;
        uint32_t u;
        for (u = 0; u < rows; u++, wr += kw) {
            const uint32_t at = plane_offset + u * width;
            uint32_t v;
            if (three && wide) {
                sum += (int32_t)KL_READ_S8(&wr[0]) * x16[at]
                       + (int32_t)KL_READ_S8(&wr[1]) * x16[at + 1]
                       + (int32_t)KL_READ_S8(&wr[2]) * x16[at + 2];
            } else if (three) {
                sum += (int32_t)KL_READ_S8(&wr[0]) * x8[at]
                       + (int32_t)KL_READ_S8(&wr[1]) * x8[at + 1]
                       + (int32_t)KL_READ_S8(&wr[2]) * x8[at + 2];
            } else {
                for (v = 0; v < cols; v++) {
                    sum += (int32_t)KL_READ_S8(&wr[v]) * (wide ? x16[at + v] : x8[at + v]);
                }
            }
        }
    }
    return sum;
}

/* The convolution of the int8 map x8, or of the int16 map x16 when wide (the other pointer
 * is unused); wide is a constant where this is inlined. */
KL_ALWAYS_INLINE void kl_conv2d_body(const kl_conv2d_params_t *p, const int8_t *x8,
                                     const int16_t *x16, int wide, int8_t *y)
{
    const uint32_t in_channels = p->in_channels;
    const uint32_t kh = p->kernel_h;
    const uint32_t kw = p->kernel_w;
    const uint32_t kernel_size = kh * kw;
    const uint32_t plane = (uint32_t)p->in_height * p->in_width;
    const uint32_t width = p->in_width;
    uint32_t o;
    for (o = 0; o < p->out_channels; o++) {
        const kl_channel_t ch = kl_channel(p->bias, p->mult, p->shift, o);
        const int8_t *wo = p->weight + o * in_channels * kernel_size;
        uint32_t i;
        for (i = 0; i < p->out_height; i++) {
            const kl_taps_t rows = kl_taps(i, p->stride_h, p->pad_top, kh, p->in_height);
            uint32_t j;
            for (j = 0; j < p->out_width; j++, y++) {
                const kl_taps_t cols = kl_taps(j, p->stride_w, p->pad_left, kw, width);
                const uint32_t first = rows.first * width + cols.first;
                const int8_t *w = wo + rows.k0 * kw + cols.k0;
                const uint32_t count = cols.k1 - cols.k0;
                const int8_t *at8 = wide ? x8 : x8 + first;
                const int16_t *at16 = wide ? x16 + first : x16;
                const uint32_t taps_h = rows.k1 - rows.k0;
                int32_t sum;
#ifndef KL_REFERENCE
                if (count == 3) {
                    sum = kl_conv2d_window(w, at8, at16, wide, 1, in_channels, kernel_size, kw,
                                           plane, width, taps_h, 3);
                } else {
                    sum = kl_conv2d_window(w, at8, at16, wide, 0, in_channels, kernel_size, kw,
                                           plane, width, taps_h, count);
                }
#else
                sum = kl_conv2d_window(w, at8, at16, wide, 0, in_channels, kernel_size, kw,
                                       plane, width, taps_h, count);
#endif
                *y = kl_requantize_clamp(sum, &ch, p->act_min, p->act_max);
            }
        }
    }
}

void kl_conv2d_s8(const kl_conv2d_params_t *p, const int8_t *x, int8_t *y)
{
    kl_conv2d_body(p, x, 0, 0, y);
}

void kl_conv2d_s16(const kl_conv2d_params_t *p, const int16_t *x, int8_t *y)
{
    kl_conv2d_body(p, 0, x, 1, y);
}
