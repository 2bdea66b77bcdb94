/* kl_global_avgpool2d.c - see kl_global_avgpool2d.h. */
#include "kl_global_avgpool2d.h"

#include "kl_fixed.h"

void kl_global_avgpool2d_s8(const kl_global_avgpool2d_params_t *p, const int8_t *x,
                            int16_t *y)
{
    const uint32_t pixels = p->pixels;
    uint32_t c;
    for (c = 0; c < p->channels; c++, x += pixels) {
        int32_t sum = 0;
        uint32_t q;
        for (q = 0; q < pixels; q++) {
            sum += x[q];
        }
        y[c] = kl_sat16(kl_shift_round_s64((int64_t)sum * p->inv, p->shift));
    }
}
