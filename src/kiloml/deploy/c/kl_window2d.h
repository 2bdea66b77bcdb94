/*
 * kl_window2d.h - which taps of a 2-D window lie inside the map, along one axis: the window
 * of output index i starts at i * stride - pad; its taps k0 .. k1 - 1 read the map's indices
 * first .. first + (k1 - k0) - 1, the others meet the padding. Every window holds at least
 * one tap of the map (the ops allow padding below the kernel and no window past the padded
 * map: -kernel < start < size), so k0 < k1. Shared by the image kernels.
 */
#ifndef KL_WINDOW2D_H
#define KL_WINDOW2D_H

#include <stdint.h>

typedef struct {
    uint32_t k0;    /* first tap inside the map */
    uint32_t k1;    /* one past the last tap inside the map */
    uint32_t first; /* map index of tap k0 */
} kl_taps_t;

static inline kl_taps_t kl_taps(uint32_t i, uint32_t stride, uint32_t pad, uint32_t kernel,
                                uint32_t size)
{
    const int32_t start = (int32_t)(i * stride) - (int32_t)pad;
    const int32_t left = (int32_t)size - start;
    kl_taps_t t;
    t.k0 = start < 0 ? (uint32_t)-start : 0;
    t.k1 = left < (int32_t)kernel ? (uint32_t)left : kernel;
    t.first = (uint32_t)(start + (int32_t)t.k0);
    return t;
}

#endif /* KL_WINDOW2D_H */
