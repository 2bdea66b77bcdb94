/*
 * kl_tile.c - the copies of patch-based execution (kl_tile.h); plain loops (no libc on the
 * bare-metal targets).
 */
#include "kl_tile.h"

void kl_tile_read_s16(const int16_t *map, int channels, int height, int width,
                      const kl_tile_t *tile, int16_t *patch)
{
    for (int c = 0; c < channels; c++) {
        const int16_t *src = map + ((long)c * height + tile->in_row0) * width + tile->in_col0;
        for (int r = 0; r < tile->in_rows; r++) {
            for (int j = 0; j < tile->in_cols; j++) patch[j] = src[j];
            patch += tile->in_cols;
            src += width;
        }
    }
}

void kl_tile_read_s8(const int8_t *map, int channels, int height, int width,
                     const kl_tile_t *tile, int8_t *patch)
{
    for (int c = 0; c < channels; c++) {
        const int8_t *src = map + ((long)c * height + tile->in_row0) * width + tile->in_col0;
        for (int r = 0; r < tile->in_rows; r++) {
            for (int j = 0; j < tile->in_cols; j++) patch[j] = src[j];
            patch += tile->in_cols;
            src += width;
        }
    }
}

void kl_tile_write_s8(const int8_t *patch, int channels, int height, int width,
                      const kl_tile_t *tile, int8_t *map)
{
    for (int c = 0; c < channels; c++) {
        int8_t *dst = map + ((long)c * height + tile->out_row0) * width + tile->out_col0;
        for (int r = 0; r < tile->out_rows; r++) {
            for (int j = 0; j < tile->out_cols; j++) dst[j] = patch[j];
            patch += tile->out_cols;
            dst += width;
        }
    }
}

void kl_tile_write_s16(const int16_t *patch, int channels, int height, int width,
                       const kl_tile_t *tile, int16_t *map)
{
    for (int c = 0; c < channels; c++) {
        int16_t *dst = map + ((long)c * height + tile->out_row0) * width + tile->out_col0;
        for (int r = 0; r < tile->out_rows; r++) {
            for (int j = 0; j < tile->out_cols; j++) dst[j] = patch[j];
            patch += tile->out_cols;
            dst += width;
        }
    }
}

void kl_tile_crop_s8(const void *crop, const int8_t *src, int8_t *dst)
{
    const kl_tile_crop_t *p = (const kl_tile_crop_t *)crop;
    for (int c = 0; c < p->channels; c++) {
        const int8_t *row = src + ((long)c * p->in_rows + p->row0) * p->in_cols + p->col0;
        for (int r = 0; r < p->rows; r++) {
            for (int j = 0; j < p->cols; j++) *dst++ = row[j];
            row += p->in_cols;
        }
    }
}
