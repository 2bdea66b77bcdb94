/*
 * kl_tile.h - patch-based execution of a network's first stages (the ``tiled`` node of
 * kiloml.ir.tiled): for every tile of the stage's output map, copy the input window it reads
 * into the patch area, run the stage's kernels on tile-sized maps (each with its tile's params
 * struct), and copy the tile's output into the stage's output map.
 *
 * Maps are channel-major [channels][height][width]. A tile's input window is rows
 * [in_row0, in_row0 + in_rows) x columns [in_col0, in_col0 + in_cols) of the input map; its
 * output region likewise in the stage's output map. params[i] points to node i's params struct
 * for this tile, followed by the crops of the residuals the stage adds. No arithmetic: copies only. Numpy twin: kiloml.ir.tiled.TiledOp.simulate.
 */
#ifndef KL_TILE_H
#define KL_TILE_H

#include <stdint.h>

/* Nodes and residual crops of one tiled stage at most (kiloml.ir.tiled.MAX_STAGE_NODES). */
#define KL_TILE_MAX_NODES 16

typedef struct {
    uint16_t in_row0;
    uint16_t in_rows;
    uint16_t in_col0;
    uint16_t in_cols;
    uint16_t out_row0;
    uint16_t out_rows;
    uint16_t out_col0;
    uint16_t out_cols;
    const void *params[KL_TILE_MAX_NODES];
} kl_tile_t;

/* A residual's tile [channels][in_rows][in_cols] cut to rows [row0, row0 + rows) x columns
 * [col0, col0 + cols): the tile of the 1x1 convolution that adds it. */
typedef struct {
    uint16_t channels;
    uint16_t in_rows;
    uint16_t in_cols;
    uint16_t row0;
    uint16_t col0;
    uint16_t rows;
    uint16_t cols;
} kl_tile_crop_t;

/* dst [channels][rows][cols] = the crop (kl_tile_crop_t) of src. */
void kl_tile_crop_s8(const void *crop, const int8_t *src, int8_t *dst);

/* patch [channels][in_rows][in_cols] = the tile's window of map [channels][height][width]. */
void kl_tile_read_s16(const int16_t *map, int channels, int height, int width,
                      const kl_tile_t *tile, int16_t *patch);
void kl_tile_read_s8(const int8_t *map, int channels, int height, int width,
                     const kl_tile_t *tile, int8_t *patch);

/* The tile's region of map [channels][height][width] = patch [channels][out_rows][out_cols]. */
void kl_tile_write_s8(const int8_t *patch, int channels, int height, int width,
                      const kl_tile_t *tile, int8_t *map);
void kl_tile_write_s16(const int16_t *patch, int channels, int height, int width,
                       const kl_tile_t *tile, int16_t *map);

#endif /* KL_TILE_H */
