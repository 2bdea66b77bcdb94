/*
 * kl_tree_path.h - Bonsai's tree: the scores of the nodes on one input's path.
 * x int16 [dims] in Q(x) (the projection); y int32 [classes] in Q(out). Nodes are numbered
 * breadth first; w[k], v[k] are node k's W_k and sigma V_k ([classes][dims], any kl_matrix_t
 * storage, each with its shift to Q(w) and Q(v_frac)); theta [internal][dims]. Starting at the
 * root with y = 0, for depth + 1 nodes:
 *   w_s = sat32(shift_round(W_k x, .)), v_s = sat16(sat32(shift_round(V_k x, .))),
 *   y[c] = sat32(y[c] + shift_round(w_s[c] * tanh_q15(v_s[c]), shift_y))   (exact int64),
 *   then left (2k + 1) when theta_k . x > 0 (exact int64), else right (2k + 2).
 * Scratch: w_s int32 [classes], v_s int16 [classes]. Numpy twin: kiloml.ops.tree_path.
 */
#ifndef KL_TREE_PATH_H
#define KL_TREE_PATH_H

#include <stdint.h>

#include "kl_matvec.h"

typedef struct {
    const kl_matrix_t *const *w;
    const kl_matrix_t *const *v;
    const kl_matrix_t *theta; /* 0 for a tree of depth 0 */
    uint16_t classes;
    uint8_t depth;
    int8_t v_frac;
    int8_t shift_y;
} kl_tree_path_params_t;

void kl_tree_path_s16_s32(const kl_tree_path_params_t *p, const int16_t *x, int32_t *y,
                          int32_t *w_scratch, int16_t *v_scratch);

#endif /* KL_TREE_PATH_H */
