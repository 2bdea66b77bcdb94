/*
 * kl_rnnpool.c - RNNPool over a map, patch after patch (see kl_rnnpool.h).
 */
#include "kl_rnnpool.h"

#include "kl_fixed.h"

/* frame [steps][channels] = the pixels (row + t drow, col + t dcol), t < steps, of every
 * channel plane of the map x8 (int8) or x16 (int16, when wide; the other pointer is unused),
 * zero outside the height x width map (the padding). wide is a constant where this is
 * inlined. */
KL_ALWAYS_INLINE void kl_gather(const int8_t *x8, const int16_t *x16, int wide, int32_t row,
                                int32_t col, int32_t drow, int32_t dcol, uint16_t steps,
                                uint16_t channels, uint16_t height, uint16_t width,
                                int16_t *frame)
{
    const uint32_t plane = (uint32_t)height * width;
    uint16_t t;
    uint16_t ch;
    for (t = 0; t < steps; t++, row += drow, col += dcol, frame += channels) {
        if (row < 0 || row >= (int32_t)height || col < 0 || col >= (int32_t)width) {
            for (ch = 0; ch < channels; ch++) {
                frame[ch] = 0;
            }
        } else {
            const uint32_t at = (uint32_t)row * width + (uint32_t)col;
            for (ch = 0; ch < channels; ch++) {
                frame[ch] = wide ? x16[ch * plane + at] : (int16_t)x8[ch * plane + at];
            }
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
 * output pixel y16 (int16) or, when narrow, y8 (int8: sat8(shift_round(h, out_shift))) of a
 * map of plane pixels. */
static void kl_sweep(const kl_fastgrnn_params_t *rnn2, const int16_t *seq,
                     const kl_rnnpool_buffers_t *buffers, uint16_t hidden2, uint16_t part,
                     uint32_t plane, int narrow, uint8_t out_shift, int16_t *y16, int8_t *y8)
{
    uint16_t k;
    kl_fastgrnn_s16(rnn2, seq, &buffers->cell, buffers->pooled);
    for (k = 0; k < hidden2; k++) {
        const uint32_t at = ((uint32_t)part * hidden2 + k) * plane;
        if (narrow) {
            const int32_t v = kl_shift_round_s32(buffers->pooled[k], out_shift);
            y8[at] = (int8_t)(v > 127 ? 127 : (v < -128 ? -128 : v));
        } else {
            y16[at] = buffers->pooled[k];
        }
    }
}

/* RNNPool of x16 into y16 (int16, when wide) or of x8 into y8 (int8); the other pointers are
 * unused; wide is a constant where this is inlined. */
KL_ALWAYS_INLINE void kl_rnnpool_body(const kl_rnnpool_params_t *p, const int8_t *x8,
                                      const int16_t *x16, int wide,
                                      const kl_rnnpool_buffers_t *buffers, int16_t *y16,
                                      int8_t *y8)
{
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
    out_plane = (uint32_t)p->out_rows * p->out_columns;
    rows = buffers->summaries;
    columns = rows + (uint32_t)p->patch_rows * p->hidden1;
    for (oy = 0; oy < p->out_rows; oy++) {
        const int32_t row0 = (int32_t)oy * p->stride_rows - p->pad_top;
        for (ox = 0; ox < p->out_columns; ox++) {
            const int32_t col0 = (int32_t)ox * p->stride_columns - p->pad_left;
            const uint32_t pixel = (uint32_t)oy * p->out_columns + ox;
            int16_t *p16 = wide ? y16 + pixel : y16;
            int8_t *p8 = wide ? y8 : y8 + pixel;
            for (i = 0; i < p->patch_rows; i++) {
                kl_gather(x8, x16, wide, row0 + i, col0, 0, 1, p->patch_columns, p->channels,
                          p->height, p->width, buffers->frame);
                kl_fastgrnn_s16(p->rnn1_rows, buffers->frame, &buffers->cell,
                                rows + (uint32_t)i * p->hidden1);
            }
            for (i = 0; i < p->patch_columns; i++) {
                kl_gather(x8, x16, wide, row0, col0 + i, 1, 0, p->patch_rows, p->channels,
                          p->height, p->width, buffers->frame);
                kl_fastgrnn_s16(p->rnn1_columns, buffers->frame, &buffers->cell,
                                columns + (uint32_t)i * p->hidden1);
            }
            kl_sweep(p->rnn2_rows, rows, buffers, p->hidden2, 0, out_plane, !wide,
                     p->out_shift, p16, p8);
            kl_reverse(rows, p->patch_rows, p->hidden1);
            kl_sweep(p->rnn2_rows, rows, buffers, p->hidden2, 1, out_plane, !wide,
                     p->out_shift, p16, p8);
            kl_sweep(p->rnn2_columns, columns, buffers, p->hidden2, 2, out_plane, !wide,
                     p->out_shift, p16, p8);
            kl_reverse(columns, p->patch_columns, p->hidden1);
            kl_sweep(p->rnn2_columns, columns, buffers, p->hidden2, 3, out_plane, !wide,
                     p->out_shift, p16, p8);
        }
    }
}

void kl_rnnpool_s16(const kl_rnnpool_params_t *p, const int16_t *x,
                    const kl_rnnpool_buffers_t *buffers, int16_t *y)
{
    kl_rnnpool_body(p, 0, x, 1, buffers, y, 0);
}

void kl_rnnpool_s8(const kl_rnnpool_params_t *p, const int8_t *x,
                   const kl_rnnpool_buffers_t *buffers, int8_t *y)
{
    kl_rnnpool_body(p, x, 0, 0, buffers, 0, y);
}
