/*
 * kl_matvec.h - matrix-vector products of int8/int16 weights with int16 activations.
 *
 * Storage (the formats kiloml.ops.matrix stores): a matrix is dense row-major, or CSR with
 * the nonzero values, one column index per nonzero (uint8 when cols <= 256, else uint16) and
 * rows + 1 uint16 row pointers, or blocked (KL_MATRIX_BLOCKED): the blocks of KL_BLOCK_WIDTH
 * columns holding a nonzero, row by row, as their weights (int8: (c0, c2, c1, c3)), one uint8
 * block index each (first column / KL_BLOCK_WIDTH, in col_index) and rows + 1 uint16 row
 * pointers counting blocks. Products and sums are exact (as in int64); the result of a row
 * is rescaled once by kl_shift_round_s64(sum, shift) and saturated. If the weights are in Q(fw)
 * and x in Q(fx), the output is in Q(fw + fx - shift).
 *
 * kl_matvec_* run the kernel the exported matrix names (no format test inside a loop, and only
 * the kernels a model uses are linked); int8 rows accumulate in int32 where that is provably
 * exact, int16 rows in int64 (SMLAL, or SMLALD for dense rows on cores with the DSP extension).
 * Compiling with -DKL_REFERENCE selects the plain reference loops (kl_matrix_row_dot per row)
 * instead; both give the same integers.
 */
#ifndef KL_MATVEC_H
#define KL_MATVEC_H

#include <stdint.h>

#include "kl_constants.h"
#include "kl_fixed.h"

/* Storage formats (kl_constants.h): KL_MATRIX_DENSE, KL_MATRIX_CSR and
 * KL_MATRIX_DENSE_INTERLEAVED: dense int8, each row's columns in groups of four stored as
 * (c0, c2, c1, c3), so that SXTB16 splits a word into (c0, c1) and (c2, c3); the columns after
 * the last full group stay in order. Same bytes as KL_MATRIX_DENSE. */

/* What a kernel does with the rescaled value v = sat32(shift_round(row . x, shift)). */
#define KL_OUT_S32 0            /* y32[r] = v */
#define KL_OUT_S32_ACCUMULATE 1 /* y32[r] = sat32(y32[r] + v) */
#define KL_OUT_S16 2            /* y16[r] = sat16(v) */

/* Where a kernel's rows go; fast is 1 when 1 <= shift <= 31. */
typedef struct {
    void *y;
    int32_t mode;
    int32_t shift;
    int32_t fast;
} kl_out_t;

typedef struct kl_matrix kl_matrix_t;

/* A kernel: every row of m times x (m->cols entries), rescaled and stored as out says. */
typedef void (*kl_kernel_t)(const kl_matrix_t *m, const int16_t *x, const kl_out_t *out);

/* A weight matrix in flash. values: int8_t or int16_t (value_bits 8 or 16); CSR adds
 * col_index (uint8_t or uint16_t, index_bits 8 or 16) and row_ptr (rows + 1 entries). kernel
 * is the kl_kernel_* for this storage, chosen at export time. */
struct kl_matrix {
    const void *values;
    const void *col_index;
    const uint16_t *row_ptr;
    uint16_t rows;
    uint16_t cols;
    uint8_t format;
    uint8_t value_bits;
    uint8_t index_bits;
    int8_t shift;
    kl_kernel_t kernel;
};

/* The kernels, for 1 <= shift <= 31 (kl_matvec_* take kl_kernel_rows for other shifts, but
 * the blocked kernels for every shift). */
void kl_kernel_dense_s8_narrow(const kl_matrix_t *m, const int16_t *x, const kl_out_t *out);
void kl_kernel_dense_s8_interleaved(const kl_matrix_t *m, const int16_t *x,
                                    const kl_out_t *out);
void kl_kernel_dense_s16(const kl_matrix_t *m, const int16_t *x, const kl_out_t *out);
void kl_kernel_dense_s16_narrow(const kl_matrix_t *m, const int16_t *x, const kl_out_t *out);
void kl_kernel_csr_s8_u8(const kl_matrix_t *m, const int16_t *x, const kl_out_t *out);
void kl_kernel_csr_s8_u16(const kl_matrix_t *m, const int16_t *x, const kl_out_t *out);
void kl_kernel_csr_s16_u8(const kl_matrix_t *m, const int16_t *x, const kl_out_t *out);
void kl_kernel_csr_s16_u16(const kl_matrix_t *m, const int16_t *x, const kl_out_t *out);
void kl_kernel_blocked_s8(const kl_matrix_t *m, const int16_t *x, const kl_out_t *out);
void kl_kernel_blocked_s16(const kl_matrix_t *m, const int16_t *x, const kl_out_t *out);
/* Any storage and shift: one exact kl_matrix_row_dot per row (also int8 rows longer than 511);
 * a blocked matrix goes to its own kernel (KL_REFERENCE builds: row by row too). */
void kl_kernel_rows(const kl_matrix_t *m, const int16_t *x, const kl_out_t *out);

/* Dot products of one dense row with int16 x; exact int64 sums. */
int64_t kl_dot_dense_s8_s16(const int8_t *w, const int16_t *x, uint16_t cols);
int64_t kl_dot_dense_s16_s16(const int16_t *w, const int16_t *x, uint16_t cols);

/* Exact int64 dot product of row `row` of m with x (x has m->cols entries), any format but
 * KL_MATRIX_BLOCKED, which only KL_REFERENCE builds read here (the ops that read single rows
 * never store a matrix blocked, so that a model without one links no blocked code). */
int64_t kl_matrix_row_dot(const kl_matrix_t *m, uint16_t row, const int16_t *x);

/* y[r] = sat32(shift_round(m[r] . x, m->shift)), or with accumulate != 0
 * y[r] = sat32(y[r] + sat32(shift_round(m[r] . x, m->shift))). y has m->rows entries. */
void kl_matvec_s16_s32(const kl_matrix_t *m, const int16_t *x, int accumulate, int32_t *y);

/* y[r] = sat16(sat32(shift_round(m[r] . x, m->shift))). y has m->rows entries. */
void kl_matvec_s16_s16(const kl_matrix_t *m, const int16_t *x, int16_t *y);

/* A vector of int8_t or int16_t (value_bits) rescaled by shift when read. */
typedef struct {
    const void *values;
    uint8_t value_bits;
    int8_t shift;
} kl_vector_t;

/* Element i of v rescaled by v->shift (kl_shift_round_s64; 32-bit arithmetic is exact for
 * -16 <= shift <= 30 because |value| <= 2^15). */
static inline int64_t kl_vector_get(const kl_vector_t *v, uint16_t i)
{
    int32_t value = v->value_bits == 8 ? KL_READ_S8(&((const int8_t *)v->values)[i])
                                       : KL_READ_S16(&((const int16_t *)v->values)[i]);
    if (v->shift >= -16 && v->shift <= 30) {
        return kl_shift_round_s32(value, v->shift);
    }
    return kl_shift_round_s64(value, v->shift);
}

#endif /* KL_MATVEC_H */
