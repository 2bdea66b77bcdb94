/* kl_global_avgpool.c - see kl_global_avgpool.h. */
#include "kl_global_avgpool.h"

#include "kl_fixed.h"

void kl_global_avgpool_s16(const kl_global_avgpool_params_t *p, const int16_t *x, int16_t *y)
{
    const uint32_t channels = p->channels;
    uint32_t c;
    uint32_t t;
    for (c = 0; c < channels; c++) {
        const int16_t *column = x + c;
        int32_t sum = 0;
        for (t = 0; t < p->steps; t++, column += channels) {
            sum += *column;
        }
        y[c] = kl_sat16(kl_shift_round_s64((int64_t)sum * p->inv_steps, p->shift));
    }
}
