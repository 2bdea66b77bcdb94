/*
 * kiloml_matvec.c - reference dense and CSR matrix-vector kernels (see kiloml_matvec.h).
 */
#include "kiloml_matvec.h"

#include "kiloml_fixed.h"

int64_t kl_dot_dense_s8_s16(const int8_t *w, const int16_t *x, uint16_t cols)
{
    int64_t sum = 0;
    uint16_t c;
    for (c = 0; c < cols; c++) {
        sum += (int32_t)w[c] * x[c];
    }
    return sum;
}

int64_t kl_dot_dense_s16_s16(const int16_t *w, const int16_t *x, uint16_t cols)
{
    int64_t sum = 0;
    uint16_t c;
    for (c = 0; c < cols; c++) {
        sum += (int32_t)w[c] * x[c];
    }
    return sum;
}

int64_t kl_dot_sparse_s8_s16_u8idx(const int8_t *values, const uint8_t *col_index,
                                   uint16_t nonzeros, const int16_t *x)
{
    int64_t sum = 0;
    uint16_t k;
    for (k = 0; k < nonzeros; k++) {
        sum += (int32_t)values[k] * x[col_index[k]];
    }
    return sum;
}

int64_t kl_dot_sparse_s8_s16_u16idx(const int8_t *values, const uint16_t *col_index,
                                    uint16_t nonzeros, const int16_t *x)
{
    int64_t sum = 0;
    uint16_t k;
    for (k = 0; k < nonzeros; k++) {
        sum += (int32_t)values[k] * x[col_index[k]];
    }
    return sum;
}

int64_t kl_dot_sparse_s16_s16_u8idx(const int16_t *values, const uint8_t *col_index,
                                    uint16_t nonzeros, const int16_t *x)
{
    int64_t sum = 0;
    uint16_t k;
    for (k = 0; k < nonzeros; k++) {
        sum += (int32_t)values[k] * x[col_index[k]];
    }
    return sum;
}

int64_t kl_dot_sparse_s16_s16_u16idx(const int16_t *values, const uint16_t *col_index,
                                     uint16_t nonzeros, const int16_t *x)
{
    int64_t sum = 0;
    uint16_t k;
    for (k = 0; k < nonzeros; k++) {
        sum += (int32_t)values[k] * x[col_index[k]];
    }
    return sum;
}

static int64_t kl_dense_row_dot(const kl_matrix_t *m, uint16_t row, const int16_t *x)
{
    uint32_t offset = (uint32_t)row * m->cols;
    if (m->value_bits == 8) {
        return kl_dot_dense_s8_s16((const int8_t *)m->values + offset, x, m->cols);
    }
    return kl_dot_dense_s16_s16((const int16_t *)m->values + offset, x, m->cols);
}

static int64_t kl_csr_row_dot(const kl_matrix_t *m, uint16_t row, const int16_t *x)
{
    uint16_t start = m->row_ptr[row];
    uint16_t nonzeros = (uint16_t)(m->row_ptr[row + 1] - start);
    if (m->value_bits == 8) {
        const int8_t *values = (const int8_t *)m->values + start;
        if (m->index_bits == 8) {
            return kl_dot_sparse_s8_s16_u8idx(values, (const uint8_t *)m->col_index + start,
                                              nonzeros, x);
        }
        return kl_dot_sparse_s8_s16_u16idx(values, (const uint16_t *)m->col_index + start,
                                           nonzeros, x);
    }
    if (m->index_bits == 8) {
        return kl_dot_sparse_s16_s16_u8idx((const int16_t *)m->values + start,
                                           (const uint8_t *)m->col_index + start, nonzeros, x);
    }
    return kl_dot_sparse_s16_s16_u16idx((const int16_t *)m->values + start,
                                        (const uint16_t *)m->col_index + start, nonzeros, x);
}

int64_t kl_matrix_row_dot(const kl_matrix_t *m, uint16_t row, const int16_t *x)
{
    return m->format == KL_MATRIX_CSR ? kl_csr_row_dot(m, row, x) : kl_dense_row_dot(m, row, x);
}

/* sat32(shift_round(sum, shift)); 32-bit rounding when the sum and the rounding term fit. */
static int32_t kl_rescale_s32(int64_t sum, int shift)
{
    if (shift > 0 && shift <= 30 && sum >= -(INT64_C(1) << 30) && sum < (INT64_C(1) << 30)) {
        return kl_shift_round_s32((int32_t)sum, shift);
    }
    return kl_sat32(kl_shift_round_s64(sum, shift));
}

void kl_matvec_s16_s32(const kl_matrix_t *m, const int16_t *x, int accumulate, int32_t *y)
{
    uint16_t r;
    for (r = 0; r < m->rows; r++) {
        int32_t value = kl_rescale_s32(kl_matrix_row_dot(m, r, x), m->shift);
        y[r] = accumulate ? kl_sat32((int64_t)y[r] + value) : value;
    }
}

void kl_matvec_s16_s16(const kl_matrix_t *m, const int16_t *x, int16_t *y)
{
    uint16_t r;
    for (r = 0; r < m->rows; r++) {
        y[r] = kl_sat16(kl_rescale_s32(kl_matrix_row_dot(m, r, x), m->shift));
    }
}
