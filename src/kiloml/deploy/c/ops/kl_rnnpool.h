/*
 * kl_rnnpool.h - RNNPool (Saha et al. 2020) over a [C][H][W] map, patch after patch.
 *
 * For each patch of patch_rows x patch_columns starting at (oy stride_rows - pad_top,
 * ox stride_columns - pad_left), row-major over the out_rows x out_columns patches (pixels
 * outside the height x width map are zeros, never stored):
 *   RNN1 (rnn1_rows: patch_columns steps; rnn1_columns: patch_rows steps; C features, hidden1)
 *     runs over each row and each column of the patch (a frame is the C channels of one
 *     pixel) and keeps its final states: the row and column summaries, int16 [rows + columns]
 *     [hidden1];
 *   RNN2 (rnn2_rows: patch_rows steps; rnn2_columns: patch_columns steps; hidden1 features,
 *     hidden2) runs over the row summaries forward and backward, then the column summaries
 *     forward and backward; its four final states are output channels
 *     [k hidden2 .. (k + 1) hidden2 - 1] of the patch for k = 0..3, written to
 *     y[channel][oy][ox] ([4 hidden2][out_rows][out_columns]).
 * Every run is kl_fastgrnn_s16 with readout KL_READOUT_LAST. Numpy twin (the spec):
 * kiloml.ops.rnnpool.
 */
#ifndef KL_RNNPOOL_H
#define KL_RNNPOOL_H

#include <stdint.h>

#include "kl_fastgrnn.h"

typedef struct {
    const kl_fastgrnn_params_t *rnn1_rows;
    const kl_fastgrnn_params_t *rnn1_columns;
    const kl_fastgrnn_params_t *rnn2_rows;
    const kl_fastgrnn_params_t *rnn2_columns;
    uint16_t channels;        /* C */
    uint16_t height;          /* H */
    uint16_t width;           /* W */
    uint16_t pad_top;         /* zero rows above the map, < patch_rows */
    uint16_t pad_left;        /* zero columns left of the map, < patch_columns */
    uint16_t patch_rows;
    uint16_t patch_columns;
    uint16_t stride_rows;
    uint16_t stride_columns;
    uint16_t out_rows;
    uint16_t out_columns;
    uint16_t hidden1;
    uint16_t hidden2;
    uint8_t out_shift;        /* kl_rnnpool_s8: y = sat8(shift_round(state, out_shift)) */
} kl_rnnpool_params_t;

/* Working memory (in the caller's arena): summaries [(patch_rows + patch_columns) hidden1],
 * frame [max(patch_rows, patch_columns) C] (one row or column gathered as [steps][C]),
 * pooled [hidden2], and the cells' buffers (sized for the larger of the two cells). */
typedef struct {
    int16_t *summaries;
    int16_t *frame;
    int16_t *pooled;
    kl_fastgrnn_buffers_t cell;
} kl_rnnpool_buffers_t;

/* y [4 hidden2][out_rows][out_columns] = RNNPool of x [channels][height][width]: int16 to
 * int16 (RNN2's states), or int8 to int8 (each input value read as the int16 of the same
 * Q-format; each state written as sat8(shift_round(state, out_shift))). */
void kl_rnnpool_s16(const kl_rnnpool_params_t *p, const int16_t *x,
                    const kl_rnnpool_buffers_t *buffers, int16_t *y);
void kl_rnnpool_s8(const kl_rnnpool_params_t *p, const int8_t *x,
                   const kl_rnnpool_buffers_t *buffers, int8_t *y);

#endif /* KL_RNNPOOL_H */
