/*
 * kl_argmax.h - the index of the largest of n int32 values (the lowest index on ties).
 * Inline: it runs once per inference on a handful of logits. Numpy twin: kiloml.ops.argmax
 * (np.argmax).
 */
#ifndef KL_ARGMAX_H
#define KL_ARGMAX_H

#include <stdint.h>

static inline int kl_argmax_s32(const int32_t *x, uint16_t n)
{
    int best = 0;
    uint16_t i;
    for (i = 1; i < n; i++) {
        if (x[i] > x[best]) {
            best = (int)i;
        }
    }
    return best;
}

#endif /* KL_ARGMAX_H */
