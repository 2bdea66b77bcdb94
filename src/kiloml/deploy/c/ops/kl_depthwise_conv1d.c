/* kl_depthwise_conv1d.c - see kl_depthwise_conv1d.h. */
#include "kl_depthwise_conv1d.h"

#include "kl_constants.h"
#include "kl_fixed.h"

/* The exact int64 sum of taps k0 .. k1 - 1 of channel c, x at frame (first + k0), channel c. */
static int64_t kl_depthwise_taps(const kl_depthwise_conv1d_params_t *p, uint32_t c,
                                 const int16_t *x, uint32_t k0, uint32_t k1)
{
    const uint32_t channels = p->channels;
    int64_t sum = 0;
    uint32_t k;
    for (k = k0; k < k1; k++, x += channels) {
        const int32_t w = p->weight_bits == 8 ? ((const int8_t *)p->weight)[c * p->kernel + k]
                                              : ((const int16_t *)p->weight)[c * p->kernel + k];
        sum += (int64_t)w * *x;
    }
    return sum;
}

/* One output step in exact int64 (the reference, and the fast path's rare cases). */
static void kl_depthwise_step_exact(const kl_depthwise_conv1d_params_t *p, const int16_t *xt,
                                    uint32_t k0, uint32_t k1, int16_t *y)
{
    uint32_t c;
    for (c = 0; c < p->channels; c++) {
        const int64_t sum = k0 < k1 ? kl_depthwise_taps(p, c, xt + c, k0, k1) : 0;
        y[c] = kl_bias_act_one(kl_sat32(kl_shift_round_s64(sum, p->shift[c])),
                               kl_vector_get(&p->bias, (uint16_t)c), p->act_min, p->act_max);
    }
}

#ifndef KL_REFERENCE
/* sat32(shift_round(sum, shift)) for the shifts outside 1 .. 31 (out of line: rare). */
static KL_NOINLINE int32_t kl_depthwise_rescale_rare(int32_t sum, int shift)
{
    return kl_sat32(kl_shift_round_s64(sum, shift));
}

/* One output step with int8 weights, taps k0 .. k1 - 1 (k0 < k1 <= kernel <=
 * KL_INT8_ROW_LIMIT, so the int32 sum is exact: |w x| <= 2^22) and a bias that fits int32; a
 * channel whose shift is in 1 .. 31 rescales in 32 bits, any other in int64. three is 1 for
 * the three taps 0, 1, 2 of a kernel of 3, written out; it, the bias width and its shift
 * direction (right) are constants where this is inlined. */
KL_ALWAYS_INLINE void kl_depthwise_step_s8(const kl_depthwise_conv1d_params_t *p,
                                           const int16_t *xt, uint32_t k0, uint32_t k1,
                                           int three, int bias_bits, int right, int16_t *y)
{
    const uint32_t channels = p->channels;
    const uint32_t kernel = three ? 3 : p->kernel;
    const int8_t *w = (const int8_t *)p->weight;
    const int bias_shift = p->bias.shift;
    uint32_t c;
    uint32_t k;
    for (c = 0; c < channels; c++, w += kernel) {
        const int16_t *xc = xt + c;
        const int shift = p->shift[c];
        int32_t sum;
        if (three) {
            sum = w[0] * xc[0] + w[1] * xc[channels] + w[2] * xc[2 * channels];
        } else {
            sum = 0;
            for (k = k0; k < k1; k++, xc += channels) {
                sum += w[k] * *xc;
            }
        }
        sum = shift >= 1 && shift <= 31 ? kl_round_shift_pos_s32(sum, shift)
                                        : kl_depthwise_rescale_rare(sum, shift);
        y[c] = kl_bias_act_s32(sum, kl_bias_s32(p->bias.values, bias_bits, c, bias_shift, right),
                               p->act_min, p->act_max);
    }
}

/* kl_depthwise_step_s8 for the bias of p (its width and shift direction as constants). */
KL_ALWAYS_INLINE void kl_depthwise_step_s8_bias(const kl_depthwise_conv1d_params_t *p,
                                                const int16_t *xt, uint32_t k0, uint32_t k1,
                                                int three, int16_t *y)
{
    const int right = p->bias.shift > 0;
    if (p->bias.value_bits == 8) {
        if (right) {
            kl_depthwise_step_s8(p, xt, k0, k1, three, 8, 1, y);
        } else {
            kl_depthwise_step_s8(p, xt, k0, k1, three, 8, 0, y);
        }
    } else if (right) {
        kl_depthwise_step_s8(p, xt, k0, k1, three, 16, 1, y);
    } else {
        kl_depthwise_step_s8(p, xt, k0, k1, three, 16, 0, y);
    }
}
#endif

#ifndef KL_REFERENCE
#endif

void kl_depthwise_conv1d_s16(const kl_depthwise_conv1d_params_t *p, const int16_t *x,
                             int16_t *y)
{
    const uint32_t channels = p->channels;
#ifndef KL_REFERENCE
    const int fast = p->weight_bits == 8 && p->kernel <= KL_INT8_ROW_LIMIT
                     && kl_bias_fits_s32(&p->bias);
#endif
    uint32_t t;
    for (t = 0; t < p->out_steps; t++, y += channels) {
        const int32_t first = (int32_t)(t * p->stride) - (int32_t)p->pad_left;
        /* the taps k0 .. k1 - 1 read frames inside x; the others meet zero padding */
        const int32_t k0 = first < 0 ? -first : 0;
        const int32_t left = (int32_t)p->in_steps - first;
        const int32_t k1 = left < (int32_t)p->kernel ? left : (int32_t)p->kernel;
        const int taps = k0 < k1;
        const int16_t *xt = taps ? x + (uint32_t)(first + k0) * channels : x;
#ifndef KL_REFERENCE
        if (fast && taps) {
            if (p->kernel == 3 && k0 == 0 && k1 == 3) {
                kl_depthwise_step_s8_bias(p, xt, 0, 3, 1, y);
            } else {
                kl_depthwise_step_s8_bias(p, xt, (uint32_t)k0, (uint32_t)k1, 0, y);
            }
            continue;
        }
#endif
        kl_depthwise_step_exact(p, xt, taps ? (uint32_t)k0 : 0, taps ? (uint32_t)k1 : 0, y);
    }
}
