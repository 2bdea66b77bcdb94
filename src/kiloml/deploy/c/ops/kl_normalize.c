/*
 * kl_normalize.c - per-feature input normalisation (see kl_normalize.h).
 */
#include "kl_normalize.h"

void kl_normalize_frame_reference(const kl_normalize_params_t *p, const int16_t *x,
                                  int16_t *xn)
{
    uint16_t f;
    for (f = 0; f < p->features; f++) {
        int64_t centered = (int64_t)x[f] - KL_READ_S16(&p->mean[f]);
        xn[f] = kl_sat16(kl_shift_round_s64(centered * KL_READ_S16(&p->inv_std[f]), p->shift));
    }
}

/* shift >= 32 gives 0 (0 <= product + 2^(shift-1) < 2^shift); shift <= 0 multiplies by 2^k,
 * k = -shift, which saturates unless -2^(15-k) <= product <= 32767 >> k. */
int16_t kl_normalize_rare(int32_t product, int shift)
{
    int k = -shift;
    if (shift > 0) {
        return 0;
    }
    if (k > 15) {
        return product > 0 ? INT16_MAX : (product < 0 ? INT16_MIN : 0);
    }
    if (product > (INT16_MAX >> k)) {
        return INT16_MAX;
    }
    if (product < -(32768 >> k)) {
        return INT16_MIN;
    }
    return (int16_t)(product * ((int32_t)1 << k));
}

void kl_normalize_s16(const kl_normalize_params_t *p, uint32_t frames, const int16_t *x,
                      int16_t *y)
{
    uint32_t t;
#if KL_DESCRIPTORS_IN_FLASH
    kl_normalize_params_t params;
    p = kl_flash_copy(&params, p, sizeof params);
#endif
    for (t = 0; t < frames; t++) {
        kl_normalize_frame_s16(p, x + t * p->features, y + t * p->features);
    }
}
