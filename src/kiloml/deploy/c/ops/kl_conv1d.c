/* kl_conv1d.c - see kl_conv1d.h. */
#include "kl_conv1d.h"

/* The window of the frames first .. first + kernel - 1 (some outside x) with zeros. */
static void kl_conv1d_window(const kl_conv1d_params_t *p, const int16_t *x, int32_t first,
                             int16_t *window)
{
    const uint32_t channels = p->in_channels;
    uint32_t k;
    uint32_t c;
    for (k = 0; k < p->kernel; k++) {
        const int32_t frame = first + (int32_t)k;
        const int inside = frame >= 0 && frame < (int32_t)p->in_steps;
        for (c = 0; c < channels; c++) {
            window[k * channels + c] = inside ? x[(uint32_t)frame * channels + c] : 0;
        }
    }
}

void kl_conv1d_s16(const kl_conv1d_params_t *p, const int16_t *x, int16_t *window,
                   int32_t *acc, int16_t *y)
{
    const uint32_t channels = p->in_channels;
    const uint16_t out_channels = p->weight->rows;
    uint32_t t;
    for (t = 0; t < p->out_steps; t++) {
        const int32_t first = (int32_t)(t * p->stride) - (int32_t)p->pad_left;
        const int16_t *source;
        if (first >= 0 && first + (int32_t)p->kernel <= (int32_t)p->in_steps) {
            source = x + (uint32_t)first * channels;
        } else {
            kl_conv1d_window(p, x, first, window);
            source = window;
        }
        kl_matvec_s16_s32(p->weight, source, 0, acc);
        kl_bias_act_s32_s16(acc, &p->bias, out_channels, p->act_min, p->act_max,
                            y + t * out_channels);
    }
}
