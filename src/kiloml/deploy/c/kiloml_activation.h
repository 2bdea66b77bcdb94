/*
 * kiloml_activation.h - integer non-linearities: int16 input in Q(frac_bits), int16 output.
 *
 * Bounded functions return Q15 (1.0 saturates to 32767); relu keeps the input's Q-format.
 * tanh interpolates a 129-entry Q15 table of tanh(k/16), k = 0..128, and uses odd symmetry;
 * sigmoid(x) = (1 + tanh(x/2)) / 2 reuses it. Absolute error for inputs in Q0..Q15:
 * below 4.6e-4 (tanh) and 2.5e-4 (sigmoid). quantTanh = clamp(x, -1, 1) and
 * quantSigm = clamp((x + 1) / 2, 0, 1) are exact up to rounding to Q15.
 * Numpy twin: kiloml.quantize.activations.
 */
#ifndef KILOML_ACTIVATION_H
#define KILOML_ACTIVATION_H

#include <stdint.h>

/* Numbering shared with kiloml.quantize.activations.ACTIVATION_IDS. */
typedef enum {
    KL_SIGMOID = 0,
    KL_TANH = 1,
    KL_QUANT_SIGM = 2,
    KL_QUANT_TANH = 3,
    KL_RELU = 4
} kl_activation_t;

#define KL_TANH_TABLE_SIZE 129

/* Q15 tanh(k/16) for k = 0..128 (the last entry saturated to 32767). */
extern const int16_t kl_tanh_table_q15[KL_TANH_TABLE_SIZE];

/* tanh(x), x in Q(frac_bits) with 0 <= frac_bits <= 24; Q15 result in [-32767, 32767]. */
int16_t kl_tanh_s16_q15(int16_t x, int frac_bits);

/* sigmoid(x), x in Q(frac_bits) with 0 <= frac_bits <= 24; Q15 result in [0, 32767]. */
int16_t kl_sigmoid_s16_q15(int16_t x, int frac_bits);

/* clamp(x, -1, 1), x in Q(frac_bits); Q15 result in [-32768, 32767]. */
int16_t kl_quant_tanh_s16_q15(int16_t x, int frac_bits);

/* clamp((x + 1) / 2, 0, 1), x in Q(frac_bits); Q15 result in [0, 32767]. */
int16_t kl_quant_sigm_s16_q15(int16_t x, int frac_bits);

/* max(x, 0) in the input's Q-format. */
int16_t kl_relu_s16(int16_t x);

/* Dispatch on kind (a kl_activation_t value). */
int16_t kl_activation_s16(uint8_t kind, int16_t x, int frac_bits);

#endif /* KILOML_ACTIVATION_H */
