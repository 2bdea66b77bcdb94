/* kl_pointwise_conv2d.c - see kl_pointwise_conv2d.h. */
#include "kl_pointwise_conv2d.h"

/* The output value of pixel at from its sum (and the residual, if any). */
static inline int8_t kl_pointwise2d_out(const kl_pointwise_conv2d_params_t *p, int32_t sum,
                                        const kl_channel_t *ch, const int8_t *r, uint32_t at)
{
    int64_t v;
    if (ch->high) {
        /* |value| < 2^29 and |residual| <= 2^22: the sum stays in int32 */
        int32_t v32 = kl_requantize_high(sum, ch);
        if (r) {
            v32 += kl_shift_round_s32(r[at], p->shift_residual);
        }
        return kl_clamp_s8_s32(v32, p->act_min, p->act_max);
    }
    v = kl_requantize_s64(sum, ch);
    if (r) {
        v += kl_shift_round_s64(r[at], p->shift_residual);
    }
    return kl_clamp_s8(v, p->act_min, p->act_max);
}

void kl_pointwise_conv2d_s8(const kl_pointwise_conv2d_params_t *p, const int8_t *x,
                            const int8_t *r, int8_t *y)
{
    const uint32_t in_channels = p->in_channels;
    const uint32_t pixels = p->pixels;
    uint32_t o;
    for (o = 0; o < p->out_channels; o++) {
        const kl_channel_t ch = kl_channel(p->bias, p->mult, p->shift, o);
        const int8_t *wo = p->weight + o * in_channels;
        const uint32_t base = o * pixels;
        uint32_t q = 0;
        uint32_t c;
#ifndef KL_REFERENCE
        for (; q + 4 <= pixels; q += 4) {
            const int8_t *xc = x + q;
            int32_t s0 = 0;
            int32_t s1 = 0;
            int32_t s2 = 0;
            int32_t s3 = 0;
            for (c = 0; c < in_channels; c++, xc += pixels) {
                const int32_t w = KL_READ_S8(&wo[c]);
                s0 += w * xc[0];
                s1 += w * xc[1];
                s2 += w * xc[2];
                s3 += w * xc[3];
            }
            y[base + q] = kl_pointwise2d_out(p, s0, &ch, r, base + q);
            y[base + q + 1] = kl_pointwise2d_out(p, s1, &ch, r, base + q + 1);
            y[base + q + 2] = kl_pointwise2d_out(p, s2, &ch, r, base + q + 2);
            y[base + q + 3] = kl_pointwise2d_out(p, s3, &ch, r, base + q + 3);
        }
#endif
        for (; q < pixels; q++) {
            const int8_t *xc = x + q;
            int32_t sum = 0;
            for (c = 0; c < in_channels; c++, xc += pixels) {
                sum += KL_READ_S8(&wo[c]) * *xc;
            }
            y[base + q] = kl_pointwise2d_out(p, sum, &ch, r, base + q);
        }
    }
}
