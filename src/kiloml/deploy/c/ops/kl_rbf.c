/* kl_rbf.c - see kl_rbf.h. */
#include "kl_rbf.h"

#include "kl_fixed.h"
#include "kl_flash.h"

#define KL_RBF_U_LIMIT 3072 /* 12 in Q8: exp(-12) < 2^-16 */

/* exp(-i), exp(-h/16), exp(-l/256) in Q15 (kiloml.ops.rbf.E_INT, E_HI, E_LO). */
static const uint16_t kl_exp_int[12] KL_CONST = {
    32768, 12055, 4435, 1631, 600, 221, 81, 30, 11, 4, 1, 1
};
static const uint16_t kl_exp_hi[16] KL_CONST = {
    32768, 30783, 28918, 27166, 25520, 23974, 22521, 21157,
    19875, 18671, 17539, 16477, 15479, 14541, 13660, 12832
};
static const uint16_t kl_exp_lo[16] KL_CONST = {
    32768, 32640, 32513, 32386, 32260, 32134, 32009, 31884,
    31760, 31636, 31513, 31390, 31267, 31146, 31024, 30903
};

int16_t kl_exp_neg_q8(int32_t u)
{
    uint32_t first;
    if (u >= KL_RBF_U_LIMIT) {
        return 0;
    }
    first = ((uint32_t)KL_READ_U16(&kl_exp_int[u >> 8]) * KL_READ_U16(&kl_exp_hi[(u >> 4) & 15])
             + ((uint32_t)1 << 14)) >> 15;
    return (int16_t)((first * KL_READ_U16(&kl_exp_lo[u & 15]) + ((uint32_t)1 << 15)) >> 16);
}

/* Prototype value `index` (row-major) in Q(a). */
static int32_t kl_rbf_prototype(const kl_rbf_params_t *p, uint32_t index)
{
    int32_t value = p->value_bits == 8 ? KL_READ_S8(&((const int8_t *)p->prototypes)[index])
                                       : KL_READ_S16(&((const int16_t *)p->prototypes)[index]);
    return kl_shift_round_s32(value, p->shift_b);
}

void kl_rbf_s16(const kl_rbf_params_t *p, const int16_t *x, int16_t *y)
{
    uint16_t j, i;
#if KL_DESCRIPTORS_IN_FLASH
    kl_rbf_params_t params;
    p = kl_flash_copy(&params, p, sizeof params);
#endif
    for (j = 0; j < p->count; j++) {
        uint64_t dist = 0;
        int64_t t;
        int32_t u;
        for (i = 0; i < p->dims; i++) {
            int32_t diff = kl_shift_round_s32(x[i], p->shift_x)
                           - kl_rbf_prototype(p, (uint32_t)j * p->dims + i);
            uint32_t magnitude = (uint32_t)(diff < 0 ? -diff : diff);
            dist += magnitude * magnitude;
        }
        t = (int64_t)dist * p->gamma2;
        if (p->shift_u > 0) {
            t = kl_shift_round_s64(t, p->shift_u);
        } else {
            t = (t >= KL_RBF_U_LIMIT ? KL_RBF_U_LIMIT : t) * ((int64_t)1 << -p->shift_u);
        }
        u = t >= KL_RBF_U_LIMIT ? KL_RBF_U_LIMIT : (int32_t)t;
        y[j] = kl_exp_neg_q8(u);
    }
}
