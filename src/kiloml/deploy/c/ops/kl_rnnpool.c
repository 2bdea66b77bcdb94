/*
 * kl_rnnpool.c - RNNPool over a map, patch after patch (see kl_rnnpool.h).
 */
#include "kl_rnnpool.h"

#include "kl_fixed.h"

/* frame [steps][channels] = the pixels src[t step], t < steps, of every channel plane. */
static void kl_gather(const int16_t *src, uint32_t step, uint16_t steps, uint16_t channels,
                      uint32_t plane, int16_t *frame)
{
    uint16_t t;
    uint16_t ch;
    for (t = 0; t < steps; t++) {
        for (ch = 0; ch < channels; ch++) {
            frame[(uint32_t)t * channels + ch] = src[ch * plane + t * step];
        }
    }
}

/* Reverse the order of the count vectors of size in seq [count][size]. */
static void kl_reverse(int16_t *seq, uint16_t count, uint16_t size)
{
    uint16_t i;
    uint16_t j;
    for (i = 0; i < count / 2; i++) {
        int16_t *a = seq + (uint32_t)i * size;
        int16_t *b = seq + (uint32_t)(count - 1 - i) * size;
        for (j = 0; j < size; j++) {
            int16_t v = a[j];
            a[j] = b[j];
            b[j] = v;
        }
    }
}

/* RNN2 over seq, its final state written to channels [part hidden2, (part + 1) hidden2) of
 * output pixel y + pixel of a map of plane pixels. */
static void kl_sweep(const kl_fastgrnn_params_t *rnn2, const int16_t *seq,
                     const kl_rnnpool_buffers_t *buffers, uint16_t hidden2, uint16_t part,
                     uint32_t plane, int16_t *y)
{
    uint16_t k;
    kl_fastgrnn_s16(rnn2, seq, &buffers->cell, buffers->pooled);
    for (k = 0; k < hidden2; k++) {
        y[((uint32_t)part * hidden2 + k) * plane] = buffers->pooled[k];
    }
}

void kl_rnnpool_s16(const kl_rnnpool_params_t *p, const int16_t *x,
                    const kl_rnnpool_buffers_t *buffers, int16_t *y)
{
    uint32_t plane;
    uint32_t out_plane;
    int16_t *rows;
    int16_t *columns;
    uint16_t oy;
    uint16_t ox;
    uint16_t i;
#if KL_DESCRIPTORS_IN_FLASH
    kl_rnnpool_params_t params;
    p = kl_flash_copy(&params, p, sizeof params);
#endif
    plane = (uint32_t)p->height * p->width;
    out_plane = (uint32_t)p->out_rows * p->out_columns;
    rows = buffers->summaries;
    columns = rows + (uint32_t)p->patch_rows * p->hidden1;
    for (oy = 0; oy < p->out_rows; oy++) {
        for (ox = 0; ox < p->out_columns; ox++) {
            const int16_t *patch = x + (uint32_t)oy * p->stride_rows * p->width +
                                   (uint32_t)ox * p->stride_columns;
            int16_t *pixel = y + (uint32_t)oy * p->out_columns + ox;
            for (i = 0; i < p->patch_rows; i++) {
                kl_gather(patch + (uint32_t)i * p->width, 1, p->patch_columns, p->channels,
                          plane, buffers->frame);
                kl_fastgrnn_s16(p->rnn1_rows, buffers->frame, &buffers->cell,
                                rows + (uint32_t)i * p->hidden1);
            }
            for (i = 0; i < p->patch_columns; i++) {
                kl_gather(patch + i, p->width, p->patch_rows, p->channels, plane,
                          buffers->frame);
                kl_fastgrnn_s16(p->rnn1_columns, buffers->frame, &buffers->cell,
                                columns + (uint32_t)i * p->hidden1);
            }
            kl_sweep(p->rnn2_rows, rows, buffers, p->hidden2, 0, out_plane, pixel);
            kl_reverse(rows, p->patch_rows, p->hidden1);
            kl_sweep(p->rnn2_rows, rows, buffers, p->hidden2, 1, out_plane, pixel);
            kl_sweep(p->rnn2_columns, columns, buffers, p->hidden2, 2, out_plane, pixel);
            kl_reverse(columns, p->patch_columns, p->hidden1);
            kl_sweep(p->rnn2_columns, columns, buffers, p->hidden2, 3, out_plane, pixel);
        }
    }
}
