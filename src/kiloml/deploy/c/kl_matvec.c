/*
 * kl_matvec.c - dense, CSR and blocked matrix-vector kernels (see kl_matvec.h).
 *
 * One kernel per storage format (dense / CSR / blocks of 4 columns, int8 / int16 values,
 * uint8 / uint16 indices; dense int8 matrices of at most 8 columns and int16 ones of 5 to 8,
 * such as low-rank factors, have their own, wider int8 ones are stored interleaved for SXTB16,
 * and wider dense rows are taken two at a time, int8 ones four at a time with the DSP
 * extension, sharing the loads of x), named by the exported matrix itself (kl_matrix_t.kernel),
 * so no format test sits inside a loop and a firmware links only the kernels its model uses.
 * Sums are exact:
 *   - int8 weights accumulate in int32 when a row has at most 511 entries
 *     (|w x| <= 127 * 32768, so 511 products stay below 2^31 - 1 in every partial sum);
 *   - int16 weights accumulate in int64 (SMLAL; on cores with the DSP extension, dense and
 *     blocked rows use SMLALD: two 16x16 products into a 64-bit sum per instruction, and CSR
 *     rows take their nonzeros in pairs, each pair's gathered x packed for one SMLALD).
 * The kernels run when 1 <= shift <= 31 (the usual case) and rescale a row sum with 32-bit
 * operations when it fits int32, else by the exact int64 kl_shift_round_s64; other shifts take
 * kl_kernel_rows, the plain reference loop (blocked matrices: their kernel's own loop).
 *
 * Defining KL_REFERENCE at compile time selects the plain reference loops instead (used by the
 * tests to check both against the simulator).
 */
#include "kl_matvec.h"

#include "kl_fixed.h"

#if !defined(KL_REFERENCE) && defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define KL_USE_DSP 1
#else
#define KL_USE_DSP 0
#endif

/* On AVR (2 KB of RAM) the dense kernels take one row at a time: two rows' sums, or x held
 * in registers, spill onto the 8-bit core's stack. Same integers. */
#if defined(__AVR__)
#define KL_ONE_ROW_AT_A_TIME 1
#else
#define KL_ONE_ROW_AT_A_TIME 0
#endif

/* KL_INT8_ROW_LIMIT (kl_constants.h) is the longest row of int8 weights whose int32 sum cannot
 * overflow: 511 * 127 * 32768 < 2^31. */

int64_t kl_dot_dense_s8_s16(const int8_t *w, const int16_t *x, uint16_t cols)
{
    int64_t sum = 0;
    uint16_t c;
    for (c = 0; c < cols; c++) {
        sum += (int32_t)KL_READ_S8(&w[c]) * x[c];
    }
    return sum;
}

int64_t kl_dot_dense_s16_s16(const int16_t *w, const int16_t *x, uint16_t cols)
{
    int64_t sum = 0;
    uint16_t c;
    for (c = 0; c < cols; c++) {
        sum += (int32_t)KL_READ_S16(&w[c]) * x[c];
    }
    return sum;
}

/* Sparse dot product of entries [start, end) of a CSR matrix's values with x. */
static int64_t kl_dot_sparse(const void *values, int value_bits, const void *col_index,
                             int index_bits, uint32_t start, uint32_t end, const int16_t *x)
{
    int64_t sum = 0;
    uint32_t k;
    for (k = start; k < end; k++) {
        int32_t w = value_bits == 8 ? KL_READ_S8(&((const int8_t *)values)[k])
                                    : KL_READ_S16(&((const int16_t *)values)[k]);
        uint32_t c = index_bits == 8 ? KL_READ_U8(&((const uint8_t *)col_index)[k])
                                     : KL_READ_U16(&((const uint16_t *)col_index)[k]);
        sum += w * x[c];
    }
    return sum;
}

/* Sparse dot product of blocks [start, end) of a blocked matrix (KL_MATRIX_BLOCKED) with x:
 * block k holds the weights of columns 4 * col_index[k] + (0, 1, 2, 3), stored in that order
 * for int16 and as (0, 2, 1, 3) for int8. Reached from the blocked kernels (shifts outside
 * 1..31) and, in KL_REFERENCE builds, from kl_matrix_row_dot: other builds of kl_matrix_row_dot
 * do not read blocked matrices (the ops that read rows one by one never store them blocked),
 * so a model without one links none of this. */
static int64_t kl_dot_blocked(const void *values, int value_bits, const uint8_t *col_index,
                              uint32_t start, uint32_t end, const int16_t *x)
{
    int64_t sum = 0;
    uint32_t k;
    uint32_t j;
    for (k = start; k < end; k++) {
        const int16_t *xb = x + KL_BLOCK_WIDTH * (uint32_t)KL_READ_U8(&col_index[k]);
        for (j = 0; j < KL_BLOCK_WIDTH; j++) {
            uint32_t stored = value_bits == 8 ? ((j & 1u) << 1) | ((j & 2u) >> 1) : j;
            int32_t w =
                value_bits == 8
                    ? KL_READ_S8(&((const int8_t *)values)[KL_BLOCK_WIDTH * k + stored])
                    : KL_READ_S16(&((const int16_t *)values)[KL_BLOCK_WIDTH * k + j]);
            sum += w * xb[j];
        }
    }
    return sum;
}

/* Dot product of an interleaved int8 row (KL_MATRIX_DENSE_INTERLEAVED) with x. */
static int64_t kl_dot_interleaved_s8_s16(const int8_t *w, const int16_t *x, uint16_t cols)
{
    int64_t sum = 0;
    uint32_t c;
    for (c = 0; c < cols; c++) {
        /* within a full group of four, column c sits at position (0, 2, 1, 3)[c % 4] */
        uint32_t stored = (c | 3u) < cols ? (c & ~3u) | ((c & 1u) << 1) | ((c & 2u) >> 1) : c;
        sum += (int32_t)KL_READ_S8(&w[stored]) * x[c];
    }
    return sum;
}

int64_t kl_matrix_row_dot(const kl_matrix_t *m, uint16_t row, const int16_t *x)
{
    if (m->format == KL_MATRIX_DENSE_INTERLEAVED) {
        return kl_dot_interleaved_s8_s16((const int8_t *)m->values + (uint32_t)row * m->cols, x,
                                         m->cols);
    }
#ifdef KL_REFERENCE
    if (m->format == KL_MATRIX_BLOCKED) {
        return kl_dot_blocked(m->values, m->value_bits, (const uint8_t *)m->col_index,
                              KL_READ_U16(&m->row_ptr[row]), KL_READ_U16(&m->row_ptr[row + 1]),
                              x);
    }
#endif
    if (m->format == KL_MATRIX_CSR) {
        return kl_dot_sparse(m->values, m->value_bits, m->col_index, m->index_bits,
                             KL_READ_U16(&m->row_ptr[row]), KL_READ_U16(&m->row_ptr[row + 1]),
                             x);
    }
    if (m->value_bits == 8) {
        return kl_dot_dense_s8_s16((const int8_t *)m->values + (uint32_t)row * m->cols, x,
                                   m->cols);
    }
    return kl_dot_dense_s16_s16((const int16_t *)m->values + (uint32_t)row * m->cols, x,
                                m->cols);
}

/* sat32(shift_round(sum, shift)) for any int64 sum and |shift| < 63 (out of line: rare). */
static KL_NOINLINE int32_t kl_rescale_exact(int64_t sum, int shift)
{
    return kl_sat32(kl_shift_round_s64(sum, shift));
}

/* Store the rescaled value of row r as mode says. */
KL_ALWAYS_INLINE void kl_store(void *y, uint32_t r, int32_t value, int mode)
{
    if (mode == KL_OUT_S16) {
        ((int16_t *)y)[r] = kl_sat16_s32(value);
    } else if (mode == KL_OUT_S32_ACCUMULATE) {
        ((int32_t *)y)[r] = kl_sat32_add(((int32_t *)y)[r], value);
    } else {
        ((int32_t *)y)[r] = value;
    }
}

/* Rescale (1 <= shift <= 31) and store the int32 row sum of an int8 kernel: out's fields are
 * passed as values, so that stores through y do not make the compiler read them again for
 * every row. */
KL_ALWAYS_INLINE void kl_emit_kernel(int32_t sum, void *y, uint32_t r, int shift, int mode)
{
    kl_store(y, r, kl_round_shift_pos_s32(sum, shift), mode);
}

/* Rescale and store a row sum that started from 2^(shift-1), the rounding term, so that the
 * rounded shift of a sum within int32 is one arithmetic shift (1 <= shift <= 31). */
KL_ALWAYS_INLINE void kl_emit_rounded(int64_t rounded, void *y, uint32_t r, int shift, int mode)
{
    /* the sum fits int32 when its low word, sign-extended, is the sum (one compare) */
    const int32_t low = (int32_t)(uint32_t)(uint64_t)rounded;
    int32_t value;
    if ((int64_t)low == rounded) {
        value = low >> shift;
    } else {
        value = kl_rescale_exact(rounded - ((int64_t)((int32_t)1 << (shift - 1))), shift);
    }
    kl_store(y, r, value, mode);
}

/* Rescale and store one row sum. */
KL_ALWAYS_INLINE void kl_emit(int64_t sum, const kl_out_t *out, uint32_t r)
{
    int32_t value;
    if (out->fast && sum >= INT32_MIN && sum <= INT32_MAX) {
        value = kl_round_shift_pos_s32((int32_t)sum, out->shift);
    } else {
        value = kl_rescale_exact(sum, out->shift);
    }
    kl_store(out->y, r, value, out->mode);
}

void kl_kernel_rows(const kl_matrix_t *m, const int16_t *x, const kl_out_t *out)
{
    uint32_t r;
#ifndef KL_REFERENCE
    if (m->format == KL_MATRIX_BLOCKED) {
        /* the blocked kernels take every shift (called through the matrix, so that a model
         * without a blocked matrix links none of them) */
        m->kernel(m, x, out);
        return;
    }
#endif
    for (r = 0; r < m->rows; r++) {
        kl_emit(kl_matrix_row_dot(m, (uint16_t)r, x), out, r);
    }
}

/* Column index i of a row whose indices start at p8 (uint8) or p16 (uint16). */
KL_ALWAYS_INLINE uint32_t kl_index(const uint8_t *p8, const uint16_t *p16, int index_bits,
                                   uint32_t i)
{
    return index_bits == 8 ? KL_READ_U8(&p8[i]) : KL_READ_U16(&p16[i]);
}

#if KL_USE_DSP
/* CSR rows of int16 weights with the DSP extension, each row's int64 sum started from the
 * rounding term 2^(shift-1): an odd row's first nonzero by SMLALBB, then two nonzeros per
 * SMLALD (both gathered x values packed by PKHBT, both weights one unaligned word), weights and
 * indices read through walking pointers. The pair loop is inline assembly: GCC 12 spilled the
 * row sum and the loop's end pointers around its own version. mode and index_bits are
 * constants after inlining (a mode tested per row made GCC spill as well). */
KL_ALWAYS_INLINE void kl_csr_s16_dsp(const int16_t *w, const uint8_t *c8, const uint16_t *c16,
                                     int index_bits, const uint16_t *row_ptr, uint32_t rows,
                                     const int16_t *x, void *y, int shift, int mode)
{
    const uint32_t half = (uint32_t)1 << (shift - 1);
    const uint16_t *const last = row_ptr + rows;
    uint32_t r = 0;
    while (row_ptr != last) {
        /* both row pointers as one (unaligned) word: no count carried from the last row */
        uint32_t bounds;
        uint32_t n;
        uint32_t lo = half;
        uint32_t hi = 0;
        uint32_t t0;
        uint32_t t1;
        int64_t sum;
        __builtin_memcpy(&bounds, row_ptr, 4);
        n = (bounds >> 16) - (bounds & 0xFFFF);
        row_ptr++;
        /* n >>= 1 (the carry: an odd count, whose first nonzero is one SMLALBB), then the
         * pairs: both indices, both x values packed by PKHBT, both weights one word, SMLALD */
        if (index_bits == 8) {
            __asm__("lsrs %[n], %[n], #1\n\t"
                    "bcc 1f\n\t"
                    "ldrb %[t0], [%[c]], #1\n\t"
                    "ldrsh %[t1], [%[w]], #2\n\t"
                    "ldrh %[t0], [%[x], %[t0], lsl #1]\n\t"
                    "smlalbb %[lo], %[hi], %[t1], %[t0]\n"
                    "1:\n\t"
                    "beq 3f\n"
                    "2:\n\t"
                    "ldrb %[t1], [%[c], #1]\n\t"
                    "ldrb %[t0], [%[c]], #2\n\t"
                    "ldrh %[t1], [%[x], %[t1], lsl #1]\n\t"
                    "ldrh %[t0], [%[x], %[t0], lsl #1]\n\t"
                    "pkhbt %[t0], %[t0], %[t1], lsl #16\n\t"
                    "ldr %[t1], [%[w]], #4\n\t"
                    "subs %[n], %[n], #1\n\t"
                    "smlald %[lo], %[hi], %[t1], %[t0]\n\t"
                    "bne 2b\n"
                    "3:"
                    : [n] "+r"(n), [c] "+r"(c8), [w] "+r"(w), [lo] "+r"(lo), [hi] "+r"(hi),
                      [t0] "=&r"(t0), [t1] "=&r"(t1)
                    : [x] "r"(x)
                    : "cc", "memory");
        } else {
            __asm__("lsrs %[n], %[n], #1\n\t"
                    "bcc 1f\n\t"
                    "ldrh %[t0], [%[c]], #2\n\t"
                    "ldrsh %[t1], [%[w]], #2\n\t"
                    "ldrh %[t0], [%[x], %[t0], lsl #1]\n\t"
                    "smlalbb %[lo], %[hi], %[t1], %[t0]\n"
                    "1:\n\t"
                    "beq 3f\n"
                    "2:\n\t"
                    "ldrh %[t1], [%[c], #2]\n\t"
                    "ldrh %[t0], [%[c]], #4\n\t"
                    "ldrh %[t1], [%[x], %[t1], lsl #1]\n\t"
                    "ldrh %[t0], [%[x], %[t0], lsl #1]\n\t"
                    "pkhbt %[t0], %[t0], %[t1], lsl #16\n\t"
                    "ldr %[t1], [%[w]], #4\n\t"
                    "subs %[n], %[n], #1\n\t"
                    "smlald %[lo], %[hi], %[t1], %[t0]\n\t"
                    "bne 2b\n"
                    "3:"
                    : [n] "+r"(n), [c] "+r"(c16), [w] "+r"(w), [lo] "+r"(lo), [hi] "+r"(hi),
                      [t0] "=&r"(t0), [t1] "=&r"(t1)
                    : [x] "r"(x)
                    : "cc", "memory");
        }
        sum = (int64_t)(((uint64_t)hi << 32) | lo);
        kl_emit_rounded(sum, y, r, shift, mode);
        r++;
    }
}
#endif

/* CSR rows of int16 weights, int64 sums (SMLAL) started from the rounding term as in the dense
 * kernels; index_bits is a constant after inlining. */
KL_ALWAYS_INLINE void kl_csr_s16(const kl_matrix_t *m, const int16_t *x, const kl_out_t *out,
                                 int index_bits)
{
    const int16_t *values = (const int16_t *)m->values;
    const uint8_t *c8 = (const uint8_t *)m->col_index;
    const uint16_t *c16 = (const uint16_t *)m->col_index;
    const uint16_t *row_ptr = m->row_ptr;
    const uint32_t rows = m->rows;
    void *const y = out->y;
    const int shift = out->shift;
    const int mode = out->mode;
    const int64_t half = (int64_t)((int32_t)1 << (shift - 1));
    uint32_t k = KL_READ_U16(&row_ptr[0]);
    uint32_t r;
#if KL_USE_DSP
    /* the row loop once per output mode */
    values += k;
    c8 += index_bits == 8 ? k : 0;
    c16 += index_bits == 8 ? 0 : k;
    if (mode == KL_OUT_S16) {
        kl_csr_s16_dsp(values, c8, c16, index_bits, row_ptr, rows, x, y, shift, KL_OUT_S16);
    } else if (mode == KL_OUT_S32_ACCUMULATE) {
        kl_csr_s16_dsp(values, c8, c16, index_bits, row_ptr, rows, x, y, shift,
                       KL_OUT_S32_ACCUMULATE);
    } else {
        kl_csr_s16_dsp(values, c8, c16, index_bits, row_ptr, rows, x, y, shift, KL_OUT_S32);
    }
    return;
#endif
    for (r = 0; r < rows; r++) {
        const uint32_t end = KL_READ_U16(&row_ptr[r + 1]);
        int64_t sum = half;
        for (; k < end; k++) {
#if defined(__AVR__)
            /* a 16 x 16 -> 32-bit multiply (exact), not a 64-bit one */
            sum += (int32_t)KL_READ_S16(&values[k]) * x[kl_index(c8, c16, index_bits, k)];
#else
            sum += (int64_t)KL_READ_S16(&values[k]) * x[kl_index(c8, c16, index_bits, k)];
#endif
        }
        kl_emit_rounded(sum, y, r, shift, mode);
    }
}

/* CSR rows of int8 weights, int32 sums (rows of at most KL_INT8_ROW_LIMIT entries). */
KL_ALWAYS_INLINE void kl_csr_s8(const kl_matrix_t *m, const int16_t *x, const kl_out_t *out,
                                int index_bits)
{
    const int8_t *values = (const int8_t *)m->values;
    const uint8_t *c8 = (const uint8_t *)m->col_index;
    const uint16_t *c16 = (const uint16_t *)m->col_index;
    const uint16_t *row_ptr = m->row_ptr;
    const uint32_t rows = m->rows;
    void *const y = out->y;
    const int shift = out->shift;
    const int mode = out->mode;
    uint32_t k = KL_READ_U16(&row_ptr[0]);
    uint32_t r;
    for (r = 0; r < rows; r++) {
        const uint32_t end = KL_READ_U16(&row_ptr[r + 1]);
        int32_t sum = 0;
        for (; k < end; k++) {
            sum += (int32_t)KL_READ_S8(&values[k]) * x[kl_index(c8, c16, index_bits, k)];
        }
        kl_emit_kernel(sum, y, r, shift, mode);
    }
}

void kl_kernel_csr_s16_u8(const kl_matrix_t *m, const int16_t *x, const kl_out_t *out)
{
    kl_csr_s16(m, x, out, 8);
}

void kl_kernel_csr_s16_u16(const kl_matrix_t *m, const int16_t *x, const kl_out_t *out)
{
    kl_csr_s16(m, x, out, 16);
}

void kl_kernel_csr_s8_u8(const kl_matrix_t *m, const int16_t *x, const kl_out_t *out)
{
    kl_csr_s8(m, x, out, 8);
}

void kl_kernel_csr_s8_u16(const kl_matrix_t *m, const int16_t *x, const kl_out_t *out)
{
    kl_csr_s8(m, x, out, 16);
}

/* Two int16 as one 32-bit word, low half first. */
KL_ALWAYS_INLINE int32_t kl_pack(int16_t low, int16_t high)
{
    return (int32_t)((uint32_t)(uint16_t)low | ((uint32_t)(uint16_t)high << 16));
}

/* Two consecutive int16 as one 32-bit word, low half first (one LDR where unaligned loads
 * are allowed). */
KL_ALWAYS_INLINE int32_t kl_pair(const int16_t *p)
{
    return kl_pack(p[0], p[1]);
}

#if KL_USE_DSP
/* Four consecutive int8 as one word (one LDR: Cortex-M4 loads unaligned words). */
KL_ALWAYS_INLINE uint32_t kl_word(const int8_t *p)
{
    uint32_t word;
    __builtin_memcpy(&word, p, 4);
    return word;
}

/* SXTB16 of the word's bytes 1 and 3: (int16 b1, int16 b3). One SXTB16 with its ROR #8
 * operand (GCC 12 emits a separate ROR for __sxtb16 of a rotated word). */
KL_ALWAYS_INLINE int32_t kl_sxtb16_odd(uint32_t word)
{
    int32_t result;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(result) : "r"(word));
    return result;
}
#endif

/* Every row of a blocked matrix by kl_dot_blocked, for shifts outside 1..31 (kl_matvec hands
 * blocked matrices to their kernel whatever the shift). */
static KL_NOINLINE void kl_blocked_rows(const kl_matrix_t *m, const int16_t *x,
                                        const kl_out_t *out)
{
    uint32_t r;
    for (r = 0; r < m->rows; r++) {
        kl_emit(kl_dot_blocked(m->values, m->value_bits, (const uint8_t *)m->col_index,
                               KL_READ_U16(&m->row_ptr[r]), KL_READ_U16(&m->row_ptr[r + 1]), x),
                out, r);
    }
}

/* Blocked rows of int16 weights (KL_MATRIX_BLOCKED): per block of four columns, two SMLALDs
 * with the DSP extension (the block's weights and x's four entries as two pairs each), else four
 * SMLALs; int64 sums started at the rounding term as in the dense kernel. */
void kl_kernel_blocked_s16(const kl_matrix_t *m, const int16_t *x, const kl_out_t *out)
{
    const int16_t *w = (const int16_t *)m->values;
    const uint8_t *block = (const uint8_t *)m->col_index;
    const uint16_t *row_ptr = m->row_ptr;
    const uint32_t rows = m->rows;
    void *const y = out->y;
    const int shift = out->shift;
    const int mode = out->mode;
    int64_t half;
    uint32_t k = KL_READ_U16(&row_ptr[0]);
    uint32_t r;
    if (!out->fast) {
        kl_blocked_rows(m, x, out);
        return;
    }
    half = (int64_t)((int32_t)1 << (shift - 1));
    for (r = 0; r < rows; r++) {
        const uint32_t end = KL_READ_U16(&row_ptr[r + 1]);
        int64_t sum = half;
        for (; k < end; k++, w += KL_BLOCK_WIDTH) {
            const int16_t *xb = x + KL_BLOCK_WIDTH * (uint32_t)KL_READ_U8(&block[k]);
#if KL_USE_DSP
            sum = __smlald(kl_pair(w), kl_pair(xb), sum);
            sum = __smlald(kl_pair(w + 2), kl_pair(xb + 2), sum);
#else
            sum += (int32_t)KL_READ_S16(&w[0]) * xb[0];
            sum += (int32_t)KL_READ_S16(&w[1]) * xb[1];
            sum += (int32_t)KL_READ_S16(&w[2]) * xb[2];
            sum += (int32_t)KL_READ_S16(&w[3]) * xb[3];
#endif
        }
        kl_emit_rounded(sum, y, r, shift, mode);
    }
}

/* Blocked rows of int8 weights, each block stored (c0, c2, c1, c3): with the DSP extension one
 * word load and two SXTB16 + SMLAD per block (SXTB16 splits the word into (c0, c1) and
 * (c2, c3), which meet x's pairs); int32 sums (rows of at most KL_INT8_ROW_LIMIT entries). */
void kl_kernel_blocked_s8(const kl_matrix_t *m, const int16_t *x, const kl_out_t *out)
{
    const int8_t *w = (const int8_t *)m->values;
    const uint8_t *block = (const uint8_t *)m->col_index;
    const uint16_t *row_ptr = m->row_ptr;
    const uint32_t rows = m->rows;
    void *const y = out->y;
    const int shift = out->shift;
    const int mode = out->mode;
    uint32_t k = KL_READ_U16(&row_ptr[0]);
    uint32_t r;
    if (!out->fast) {
        kl_blocked_rows(m, x, out);
        return;
    }
    for (r = 0; r < rows; r++) {
        const uint32_t end = KL_READ_U16(&row_ptr[r + 1]);
        int32_t sum = 0;
        for (; k < end; k++, w += KL_BLOCK_WIDTH) {
            const int16_t *xb = x + KL_BLOCK_WIDTH * (uint32_t)KL_READ_U8(&block[k]);
#if KL_USE_DSP
            const uint32_t word = kl_word(w);
            /* SMLAD wraps like an int32 sum, and no partial sum leaves int32 */
            sum = __smlad(__sxtb16(word), kl_pair(xb), sum);
            sum = __smlad(kl_sxtb16_odd(word), kl_pair(xb + 2), sum);
#else
            /* products widened to 32 bits first (a 16-bit int would overflow) */
            sum += (int32_t)KL_READ_S8(&w[0]) * xb[0] + (int32_t)KL_READ_S8(&w[2]) * xb[1] +
                   (int32_t)KL_READ_S8(&w[1]) * xb[2] + (int32_t)KL_READ_S8(&w[3]) * xb[3];
#endif
        }
        kl_emit_kernel(sum, y, r, shift, mode);
    }
}

/* Dense int16 rows are taken two at a time: each load of x serves both rows, which halves the
 * loads of x and the loop overhead per product. The sums are the exact int64 row sums. */

/* Four columns of rows w0 and w1 times x into s0 and s1 (two SMLALDs per row). */
#define KL_DOT2_S16_FOUR(w0, w1, x, s0, s1)                                                 \
    do {                                                                                  \
        const int32_t xa_ = kl_pair(x);                                                   \
        const int32_t xb_ = kl_pair((x) + 2);                                             \
        (s0) = __smlald(kl_pair(w0), xa_, (s0));                                          \
        (s1) = __smlald(kl_pair(w1), xa_, (s1));                                          \
        (s0) = __smlald(kl_pair((w0) + 2), xb_, (s0));                                    \
        (s1) = __smlald(kl_pair((w1) + 2), xb_, (s1));                                    \
    } while (0)

/* start + the sums of rows w0 and w1 (cols entries each) with x, in int64 (SMLALD with the
 * DSP extension, two 16x16 products per instruction, eight columns per pass; else SMLAL). */
KL_ALWAYS_INLINE void kl_dot2_s16(const int16_t *w0, const int16_t *w1, const int16_t *x,
                                  uint32_t cols, int64_t start, int64_t *sum0, int64_t *sum1)
{
    int64_t s0 = start;
    int64_t s1 = start;
    uint32_t c = 0;
#if KL_USE_DSP
    const int16_t *const end8 = x + (cols & ~7u);
    while (x != end8) {
        KL_DOT2_S16_FOUR(w0, w1, x, s0, s1);
        KL_DOT2_S16_FOUR(w0 + 4, w1 + 4, x + 4, s0, s1);
        x += 8;
        w0 += 8;
        w1 += 8;
    }
    if (cols & 4u) {
        KL_DOT2_S16_FOUR(w0, w1, x, s0, s1);
        x += 4;
        w0 += 4;
        w1 += 4;
    }
    if (cols & 2u) {
        const int32_t xa = kl_pair(x);
        s0 = __smlald(kl_pair(w0), xa, s0);
        s1 = __smlald(kl_pair(w1), xa, s1);
        x += 2;
        w0 += 2;
        w1 += 2;
    }
#else
    for (; c + 1 < cols; c += 2) {
        const int32_t xa = x[c];
        const int32_t xb = x[c + 1];
        s0 += KL_READ_S16(&w0[c]) * xa;
        s1 += KL_READ_S16(&w1[c]) * xa;
        s0 += KL_READ_S16(&w0[c + 1]) * xb;
        s1 += KL_READ_S16(&w1[c + 1]) * xb;
    }
#endif
    if (cols & 1u) {
        s0 += (int32_t)KL_READ_S16(&w0[c]) * x[c];
        s1 += (int32_t)KL_READ_S16(&w1[c]) * x[c];
    }
    *sum0 = s0;
    *sum1 = s1;
}

/* Dense rows of int16 weights, int64 sums, two rows per pass (the last one alone: its
 * second row is itself, computed twice and stored once). */
KL_ALWAYS_INLINE void kl_dense_s16(const kl_matrix_t *m, const int16_t *x, const kl_out_t *out)
{
    const int16_t *w = (const int16_t *)m->values;
    const uint32_t cols = m->cols;
    const uint32_t rows = m->rows;
    void *const y = out->y;
    const int shift = out->shift;
    const int mode = out->mode;
    const int64_t half = (int64_t)((int32_t)1 << (shift - 1));
    uint32_t r;
#if KL_ONE_ROW_AT_A_TIME
    for (r = 0; r < rows; r++, w += cols) {
        kl_emit_rounded(half + kl_dot_dense_s16_s16(w, x, (uint16_t)cols), y, r, shift, mode);
    }
    return;
#endif
    for (r = 0; r + 1 < rows; r += 2, w += 2 * cols) {
        int64_t s0;
        int64_t s1;
        kl_dot2_s16(w, w + cols, x, cols, half, &s0, &s1);
        kl_emit_rounded(s0, y, r, shift, mode);
        kl_emit_rounded(s1, y, r + 1, shift, mode);
    }
    if (r < rows) {
        int64_t s0;
        int64_t s1;
        kl_dot2_s16(w, w, x, cols, half, &s0, &s1);
        kl_emit_rounded(s0, y, r, shift, mode);
    }
}

void kl_kernel_dense_s16(const kl_matrix_t *m, const int16_t *x, const kl_out_t *out)
{
    kl_dense_s16(m, x, out);
}

/* Narrow int16 rows: dense rows of 5 to KL_NARROW_COLS columns (such as the input matrix of a
 * model with few features, or the second factor of a low-rank matrix). With the DSP extension
 * x waits in registers as four pairs, zero-padded to KL_NARROW_COLS, and each row is four
 * SMLALDs with no inner loop: the weights read past a row's end belong to the next row and
 * meet the zero padding. The row loop is compiled once per output mode (and for 6 columns,
 * such as the input matrix of a 6-channel IMU model, once more with three SMLALDs for int32
 * outputs), so that no mode test and no reload of x sits inside it. The last row of a matrix
 * whose rows read past their columns is copied into a zero-padded row first. Without the DSP
 * extension this is kl_kernel_dense_s16. */
#if KL_USE_DSP
/* Rows [first, end) of y from the rows of w (each read as KL_NARROW_COLS weights, the next one
 * cols further); mode is a constant after inlining. A row sum outside int32 (rare) leaves the
 * inner loop, so that the call that rescales it does not tie up the loop's registers. */
KL_ALWAYS_INLINE void kl_narrow_s16_rows(const int16_t *w, uint32_t cols, uint32_t first,
                                         uint32_t end, const int16_t *xs, void *y, int shift,
                                         int mode, int six)
{
    const int32_t x01 = kl_pair(xs);
    const int32_t x23 = kl_pair(xs + 2);
    const int32_t x45 = kl_pair(xs + 4);
    const int32_t x67 = kl_pair(xs + 6);
    const int32_t half = (int32_t)1 << (shift - 1);
    uint32_t r = first;
    while (r < end) {
        int64_t sum;
        for (;;) {
            int32_t low;
            sum = __smlald(kl_pair(w), x01, (int64_t)half);
            sum = __smlald(kl_pair(w + 2), x23, sum);
            sum = __smlald(kl_pair(w + 4), x45, sum);
            if (!six) {
                sum = __smlald(kl_pair(w + 6), x67, sum);
            }
            low = (int32_t)(uint32_t)(uint64_t)sum;
            if ((int64_t)low != sum) {
                break;
            }
            kl_store(y, r, low >> shift, mode);
            w += cols;
            if (++r == end) {
                return;
            }
        }
        kl_store(y, r, kl_rescale_exact(sum - half, shift), mode);
        w += cols;
        r++;
    }
}

/* kl_narrow_s16_rows with mode a constant. */
static KL_NOINLINE void kl_narrow_s16_any(const int16_t *w, uint32_t cols, uint32_t first,
                                          uint32_t end, const int16_t *x, const kl_out_t *out)
{
    void *const y = out->y;
    const int shift = out->shift;
    const int mode = out->mode;
    int16_t xs[KL_NARROW_COLS];
    uint32_t c;
    for (c = 0; c < KL_NARROW_COLS; c++) {
        xs[c] = c < cols ? x[c] : 0;
    }
    if (mode == KL_OUT_S32_ACCUMULATE) {
        kl_narrow_s16_rows(w, cols, first, end, xs, y, shift, KL_OUT_S32_ACCUMULATE, 0);
    } else if (mode == KL_OUT_S16) {
        kl_narrow_s16_rows(w, cols, first, end, xs, y, shift, KL_OUT_S16, 0);
    } else if (cols == 6) {
        kl_narrow_s16_rows(w, cols, first, end, xs, y, shift, KL_OUT_S32, 1);
    } else {
        kl_narrow_s16_rows(w, cols, first, end, xs, y, shift, KL_OUT_S32, 0);
    }
}
#endif

void kl_kernel_dense_s16_narrow(const kl_matrix_t *m, const int16_t *x, const kl_out_t *out)
{
#if KL_USE_DSP
    const int16_t *w = (const int16_t *)m->values;
    const uint32_t cols = m->cols;
    const uint32_t rows = m->rows;
    /* the rows whose reads stay inside the matrix: every row when a row reads exactly its
     * columns (8, or 6 with three SMLALDs), else all but the last (5 <= cols < 8) */
    const uint32_t inside =
        cols == KL_NARROW_COLS || (cols == 6 && out->mode == KL_OUT_S32) ? rows : rows - 1;
    kl_narrow_s16_any(w, cols, 0, inside, x, out);
    if (inside < rows) {
        /* the last row, zero-padded to the KL_NARROW_COLS weights a row reads */
        int16_t last[KL_NARROW_COLS];
        uint32_t c;
        w += inside * cols;
        for (c = 0; c < KL_NARROW_COLS; c++) {
            last[c] = c < cols ? w[c] : 0;
        }
        kl_narrow_s16_any(last, cols, inside, rows, x, out);
    }
#else
    kl_dense_s16(m, x, out);
#endif
}

#if KL_USE_DSP
/* Four interleaved int8 columns of rows w0 and w1 times x into s0 and s1: SXTB16 makes
 * (c0, c1) and (c2, c3) of each word, two SMLADs per row. */
#define KL_DOT2_S8_FOUR(w0, w1, x, s0, s1)                                                  \
    do {                                                                                  \
        const int32_t xa_ = kl_pair(x);                                                   \
        const int32_t xb_ = kl_pair((x) + 2);                                             \
        const uint32_t a_ = kl_word(w0);                                                  \
        const uint32_t b_ = kl_word(w1);                                                  \
        (s0) = __smlad(__sxtb16(a_), xa_, (s0));                                          \
        (s1) = __smlad(__sxtb16(b_), xa_, (s1));                                          \
        (s0) = __smlad(kl_sxtb16_odd(a_), xb_, (s0));                            \
        (s1) = __smlad(kl_sxtb16_odd(b_), xb_, (s1));                            \
    } while (0)
#endif

/* Row sums of two interleaved int8 rows (KL_MATRIX_DENSE_INTERLEAVED) with x, int32 (cols <=
 * KL_INT8_ROW_LIMIT). With the DSP extension a word of four weights becomes (c0, c1) and
 * (c2, c3) by SXTB16 and meets x pairs read as they are, once for both rows: two SMLADs per
 * row and four columns. */
KL_ALWAYS_INLINE void kl_dot2_s8_interleaved(const int8_t *w0, const int8_t *w1,
                                             const int16_t *x, uint32_t cols, int32_t *sum0,
                                             int32_t *sum1)
{
    const uint32_t grouped = cols & ~3u;
    int32_t s0 = 0;
    int32_t s1 = 0;
    uint32_t c = 0;
#if KL_USE_DSP
    const int16_t *const grouped_end = x + grouped;
    while (x != grouped_end) {
        KL_DOT2_S8_FOUR(w0, w1, x, s0, s1);
        x += 4;
        w0 += 4;
        w1 += 4;
    }
    x -= grouped;
    w0 -= grouped;
    w1 -= grouped;
    c = grouped;
#else
    for (; c < grouped; c += 4) {
        const int32_t x0 = x[c];
        const int32_t x1 = x[c + 1];
        const int32_t x2 = x[c + 2];
        const int32_t x3 = x[c + 3];
        s0 += KL_READ_S8(&w0[c]) * x0 + KL_READ_S8(&w0[c + 2]) * x1 +
              KL_READ_S8(&w0[c + 1]) * x2 + KL_READ_S8(&w0[c + 3]) * x3;
        s1 += KL_READ_S8(&w1[c]) * x0 + KL_READ_S8(&w1[c + 2]) * x1 +
              KL_READ_S8(&w1[c + 1]) * x2 + KL_READ_S8(&w1[c + 3]) * x3;
    }
#endif
    for (; c < cols; c++) {
        s0 += (int32_t)KL_READ_S8(&w0[c]) * x[c];
        s1 += (int32_t)KL_READ_S8(&w1[c]) * x[c];
    }
    *sum0 = s0;
    *sum1 = s1;
}

#if KL_USE_DSP
/* The sums of the first `grouped` (a multiple of 4) interleaved columns of four int8 rows
 * (w, w + cols, w + 2 cols, w + 3 cols) with x: per group of four columns, x's two pairs loaded
 * once for the four rows, one word and two SXTB16 + SMLAD per row. Inline assembly, because
 * GCC 12 does not keep the four sums, two pairs and row pointers in registers. */
KL_ALWAYS_INLINE void kl_dot4_s8_interleaved(const int8_t *w, uint32_t cols, const int16_t *x,
                                             uint32_t grouped, int32_t *s)
{
    const int8_t *w2 = w + 2 * cols;
    const int16_t *const end = x + grouped;
    int32_t a0 = 0;
    int32_t a1 = 0;
    int32_t a2 = 0;
    int32_t a3 = 0;
    uint32_t xa;
    uint32_t xb;
    uint32_t t;
    uint32_t u;
    __asm__("cmp %[x], %[end]\n\t"
            "beq 2f\n"
            "1:\n\t"
            "ldr %[xb], [%[x], #4]\n\t"
            "ldr %[xa], [%[x]], #8\n\t"
            "ldr %[t], [%[w0], %[cols]]\n\t"
            "sxtb16 %[u], %[t]\n\t"
            "smlad %[a1], %[u], %[xa], %[a1]\n\t"
            "sxtb16 %[u], %[t], ror #8\n\t"
            "smlad %[a1], %[u], %[xb], %[a1]\n\t"
            "ldr %[t], [%[w0]], #4\n\t"
            "sxtb16 %[u], %[t]\n\t"
            "smlad %[a0], %[u], %[xa], %[a0]\n\t"
            "sxtb16 %[u], %[t], ror #8\n\t"
            "smlad %[a0], %[u], %[xb], %[a0]\n\t"
            "ldr %[t], [%[w2], %[cols]]\n\t"
            "sxtb16 %[u], %[t]\n\t"
            "smlad %[a3], %[u], %[xa], %[a3]\n\t"
            "sxtb16 %[u], %[t], ror #8\n\t"
            "smlad %[a3], %[u], %[xb], %[a3]\n\t"
            "ldr %[t], [%[w2]], #4\n\t"
            "sxtb16 %[u], %[t]\n\t"
            "smlad %[a2], %[u], %[xa], %[a2]\n\t"
            "sxtb16 %[u], %[t], ror #8\n\t"
            "smlad %[a2], %[u], %[xb], %[a2]\n\t"
            "cmp %[x], %[end]\n\t"
            "bne 1b\n"
            "2:"
            : [x] "+r"(x), [w0] "+r"(w), [w2] "+r"(w2), [a0] "+r"(a0), [a1] "+r"(a1),
              [a2] "+r"(a2), [a3] "+r"(a3), [xa] "=&r"(xa), [xb] "=&r"(xb), [t] "=&r"(t),
              [u] "=&r"(u)
            : [cols] "r"(cols), [end] "r"(end)
            : "cc", "memory");
    s[0] = a0;
    s[1] = a1;
    s[2] = a2;
    s[3] = a3;
}
#endif

/* Dense int8 rows stored interleaved, int32 sums, two rows per pass (the last one alone as
 * in kl_kernel_dense_s16); with the DSP extension four rows per pass. */
void kl_kernel_dense_s8_interleaved(const kl_matrix_t *m, const int16_t *x, const kl_out_t *out)
{
    const int8_t *w = (const int8_t *)m->values;
    const uint32_t cols = m->cols;
    const uint32_t rows = m->rows;
    void *const y = out->y;
    const int shift = out->shift;
    const int mode = out->mode;
    uint32_t r;
#if KL_ONE_ROW_AT_A_TIME
    for (r = 0; r < rows; r++, w += cols) { /* int32 sums, as below */
        kl_emit_kernel((int32_t)kl_dot_interleaved_s8_s16(w, x, (uint16_t)cols), y, r, shift,
                       mode);
    }
    return;
#endif
    r = 0;
#if KL_USE_DSP
    /* four rows per pass (x's pairs loaded once for all four) */
    for (; r + 3 < rows; r += 4, w += 4 * cols) {
        int32_t s[4];
        uint32_t c;
        kl_dot4_s8_interleaved(w, cols, x, cols & ~3u, s);
        for (c = cols & ~3u; c < cols; c++) {
            /* the columns after the last group of four, stored in order */
            const int32_t xc = x[c];
            s[0] += (int32_t)w[c] * xc;
            s[1] += (int32_t)w[cols + c] * xc;
            s[2] += (int32_t)w[2 * cols + c] * xc;
            s[3] += (int32_t)w[3 * cols + c] * xc;
        }
        kl_emit_kernel(s[0], y, r, shift, mode);
        kl_emit_kernel(s[1], y, r + 1, shift, mode);
        kl_emit_kernel(s[2], y, r + 2, shift, mode);
        kl_emit_kernel(s[3], y, r + 3, shift, mode);
    }
    for (; r < rows; r++, w += cols) {
        /* the last rows one at a time */
        int32_t s0;
        int32_t s1;
        kl_dot2_s8_interleaved(w, w, x, cols, &s0, &s1);
        kl_emit_kernel(s0, y, r, shift, mode);
    }
    return;
#endif
    for (; r + 1 < rows; r += 2, w += 2 * cols) {
        int32_t s0;
        int32_t s1;
        kl_dot2_s8_interleaved(w, w + cols, x, cols, &s0, &s1);
        kl_emit_kernel(s0, y, r, shift, mode);
        kl_emit_kernel(s1, y, r + 1, shift, mode);
    }
    if (r < rows) {
        int32_t s0;
        int32_t s1;
        kl_dot2_s8_interleaved(w, w, x, cols, &s0, &s1);
        kl_emit_kernel(s0, y, r, shift, mode);
    }
}

/* Narrow int8 rows: dense rows of at most KL_NARROW_COLS columns, such as the second factor of
 * a low-rank matrix (one column per rank) and the input matrix of a model with few features.
 * The general kernel spends more per such row on loop set-up and rescaling than on products.
 * Here x waits in registers, zero-padded to KL_NARROW_COLS, and each row reads exactly
 * KL_NARROW_COLS weights with no inner loop: the weights past its end belong to the next rows
 * and meet the zero padding. The last rows, whose reads would pass the end of the matrix, take
 * the plain loop. Sums are int32 as in the other int8 kernels (8 products below 2^22 each). */

/* Rescale an int32 row sum for 1 <= shift <= 31 and store it as mode says. */
KL_ALWAYS_INLINE void kl_store_fast(void *y, uint32_t r, int32_t sum, int shift, int mode)
{
    kl_store(y, r, kl_round_shift_pos_s32(sum, shift), mode);
}

/* Rows [0, count) of a narrow matrix (each reads KL_NARROW_COLS weights); xs is x padded. */
KL_ALWAYS_INLINE void kl_narrow_rows(const int8_t *w, uint32_t cols, uint32_t count,
                                     const int16_t *xs, void *y, int shift, int mode)
{
    uint32_t r;
#if KL_USE_DSP
    /* SXTB16 splits four weights into (w0, w2) and (w1, w3); x is paired to match, once. */
    const int32_t x02 = kl_pack(xs[0], xs[2]);
    const int32_t x13 = kl_pack(xs[1], xs[3]);
    const int32_t x46 = kl_pack(xs[4], xs[6]);
    const int32_t x57 = kl_pack(xs[5], xs[7]);
    for (r = 0; r < count; r++, w += cols) {
        const uint32_t a = kl_word(w);
        const uint32_t b = kl_word(w + 4);
        int32_t sum;
        /* SMLAD wraps like an int32 sum, and no partial sum leaves int32 */
        sum = __smuad(__sxtb16(a), x02);
        sum = __smlad(kl_sxtb16_odd(a), x13, sum);
        sum = __smlad(__sxtb16(b), x46, sum);
        sum = __smlad(kl_sxtb16_odd(b), x57, sum);
        kl_store_fast(y, r, sum, shift, mode);
    }
#else
    const int32_t x0 = xs[0], x1 = xs[1], x2 = xs[2], x3 = xs[3];
    const int32_t x4 = xs[4], x5 = xs[5], x6 = xs[6], x7 = xs[7];
    for (r = 0; r < count; r++, w += cols) {
        kl_store_fast(y, r, KL_READ_S8(&w[0]) * x0 + KL_READ_S8(&w[1]) * x1 +
                                KL_READ_S8(&w[2]) * x2 + KL_READ_S8(&w[3]) * x3 +
                                KL_READ_S8(&w[4]) * x4 + KL_READ_S8(&w[5]) * x5 +
                                KL_READ_S8(&w[6]) * x6 + KL_READ_S8(&w[7]) * x7, shift, mode);
    }
#endif
}

void kl_kernel_dense_s8_narrow(const kl_matrix_t *m, const int16_t *x, const kl_out_t *out)
{
    const int8_t *w = (const int8_t *)m->values;
    const uint32_t cols = m->cols;
    const uint32_t rows = m->rows;
    const int shift = out->shift;
    const int mode = out->mode;
    void *y = out->y;
    uint32_t r = 0;
    uint32_t c;
#if !KL_ONE_ROW_AT_A_TIME
    int16_t xs[KL_NARROW_COLS];
    for (c = 0; c < KL_NARROW_COLS; c++) {
        xs[c] = c < cols ? x[c] : 0;
    }
    if (rows * cols >= KL_NARROW_COLS) {
        /* the rows whose reads stay inside: r * cols + KL_NARROW_COLS <= rows * cols */
        r = rows - (KL_NARROW_COLS + cols - 1) / cols + 1;
        kl_narrow_rows(w, cols, r, xs, y, shift, mode);
    }
#endif
    for (w += r * cols; r < rows; r++, w += cols) {
        int32_t sum = 0;
        for (c = 0; c < cols; c++) {
            sum += (int32_t)KL_READ_S8(&w[c]) * x[c];
        }
        kl_store_fast(y, r, sum, shift, mode);
    }
}

static void kl_matvec(const kl_matrix_t *m, const int16_t *x, int mode, void *y)
{
    kl_out_t out;
    out.y = y;
    out.mode = mode;
    out.shift = m->shift;
    out.fast = m->shift >= 1 && m->shift <= 31;
#ifndef KL_REFERENCE
    if (out.fast) {
        m->kernel(m, x, &out);
        return;
    }
#endif
    kl_kernel_rows(m, x, &out);
}

void kl_matvec_s16_s32(const kl_matrix_t *m, const int16_t *x, int accumulate, int32_t *y)
{
    kl_matvec(m, x, accumulate ? KL_OUT_S32_ACCUMULATE : KL_OUT_S32, y);
}

void kl_matvec_s16_s16(const kl_matrix_t *m, const int16_t *x, int16_t *y)
{
    kl_matvec(m, x, KL_OUT_S16, y);
}
