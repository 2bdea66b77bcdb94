/*
 * kl_activation.c - integer tanh/sigmoid by table interpolation, quantTanh, quantSigm,
 * relu. See kl_activation.h for formats and error bounds.
 */
#include "kl_activation.h"

#include "kl_fixed.h"

const int16_t kl_tanh_table_q15[KL_TANH_TABLE_SIZE] KL_CONST = {
    0, 2045, 4075, 6073, 8025, 9919, 11743, 13486,
    15143, 16706, 18173, 19542, 20813, 21986, 23066, 24054,
    24956, 25776, 26519, 27191, 27797, 28341, 28830, 29268,
    29660, 30010, 30322, 30600, 30847, 31067, 31262, 31435,
    31589, 31726, 31846, 31953, 32048, 32132, 32206, 32271,
    32329, 32381, 32426, 32466, 32501, 32532, 32560, 32584,
    32606, 32625, 32642, 32657, 32670, 32681, 32691, 32700,
    32708, 32715, 32721, 32727, 32732, 32736, 32740, 32743,
    32746, 32749, 32751, 32753, 32755, 32756, 32758, 32759,
    32760, 32761, 32762, 32762, 32763, 32764, 32764, 32765,
    32765, 32765, 32766, 32766, 32766, 32766, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767
};

/* tanh of u >= 0 in Q12 as Q15: entries every 1/16 (256 in Q12), linear in between. */
static int32_t kl_tanh_lookup_q15(int32_t u)
{
    int32_t index = u >> 8;
    int32_t frac;
    int32_t lower;
    int32_t upper;
    if (index >= KL_TANH_TABLE_SIZE - 1) {
        return KL_READ_S16(&kl_tanh_table_q15[KL_TANH_TABLE_SIZE - 1]);
    }
    frac = u & 255;
    lower = KL_READ_S16(&kl_tanh_table_q15[index]);
    upper = KL_READ_S16(&kl_tanh_table_q15[index + 1]);
    return lower + (((upper - lower) * frac + 128) >> 8);
}

/* |x| rescaled from Q(frac_bits) to Q(target_bits): at most 2^15 * 2^13 = 2^28 for
 * 0 <= frac_bits <= 24 and target_bits <= 13, so 32 bits are exact. */
static int32_t kl_abs_to_q(int16_t x, int frac_bits, int target_bits)
{
    int32_t magnitude = x < 0 ? -(int32_t)x : (int32_t)x;
    return kl_shift_round_s32(magnitude, frac_bits - target_bits);
}

int16_t kl_tanh_s16_q15(int16_t x, int frac_bits)
{
    int32_t t = kl_tanh_lookup_q15(kl_abs_to_q(x, frac_bits, 12));
    return (int16_t)(x < 0 ? -t : t);
}

int16_t kl_sigmoid_s16_q15(int16_t x, int frac_bits)
{
    /* Q11 of |x| is Q12 of |x|/2: sigmoid(x) = (1 + tanh(x/2)) / 2. */
    int32_t t = kl_tanh_lookup_q15(kl_abs_to_q(x, frac_bits, 11));
    return (int16_t)((32768 + (x < 0 ? -t : t)) >> 1);
}

/* For 0 <= frac_bits <= 24 the rescaled |x| is at most 2^15 * 2^15 = 2^30: 32 bits are exact. */
int16_t kl_quant_tanh_s16_q15(int16_t x, int frac_bits)
{
    return kl_sat16(kl_shift_round_s32(x, frac_bits - 15));
}

int16_t kl_quant_sigm_s16_q15(int16_t x, int frac_bits)
{
    int32_t half = (kl_shift_round_s32(x, frac_bits - 15) + 32768) >> 1;
    if (half < 0) {
        return 0;
    }
    return half > INT16_MAX ? INT16_MAX : (int16_t)half;
}

int16_t kl_relu_s16(int16_t x)
{
    return x > 0 ? x : 0;
}

int16_t kl_activation_s16(uint8_t kind, int16_t x, int frac_bits)
{
    switch (kind) {
    case KL_SIGMOID:
        return kl_sigmoid_s16_q15(x, frac_bits);
    case KL_TANH:
        return kl_tanh_s16_q15(x, frac_bits);
    case KL_QUANT_SIGM:
        return kl_quant_sigm_s16_q15(x, frac_bits);
    case KL_QUANT_TANH:
        return kl_quant_tanh_s16_q15(x, frac_bits);
    default:
        return kl_relu_s16(x);
    }
}

void kl_activation_prepare(kl_activation_plan_t *plan, uint8_t kind, int frac_bits)
{
    int shift = frac_bits - (kind == KL_TANH ? 12 : (kind == KL_SIGMOID ? 11 : 15));
    if (shift > 0) {
        plan->mul = 1;
        plan->add = (int32_t)1 << (shift - 1);
        plan->rshift = shift;
    } else {
        plan->mul = (int32_t)1 << -shift;
        plan->add = 0;
        plan->rshift = 0;
    }
}
