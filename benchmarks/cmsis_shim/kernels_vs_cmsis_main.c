/*
 * kernels_vs_cmsis_main.c - the program of benchmarks/kernels_vs_cmsis.py: kiloml's dense
 * matrix-vector kernels and CMSIS-DSP's arm_mat_vec_mult_q15 / _q7 and arm_dot_prod_q15 on the
 * same matrices, one after the other, each call between kl_bench_start() and
 * kiloml_bench_end() so that the QEMU plugin counts its instructions.
 *
 * Per shape (kernels_vs_cmsis_data.h, generated) it measures, in this order: an empty interval
 * (the cost of the markers, subtracted by the script), kiloml int16 weights, CMSIS q15,
 * CMSIS arm_dot_prod_q15 once per row, kiloml int8 weights, CMSIS q7; and prints each result
 * ("<tag> <shape> <values...>") for the script to check against numpy.
 */
#include <stdint.h>

#include "dsp/basic_math_functions.h"
#include "dsp/matrix_functions.h"
#include "harness.h"
#include "kl_matvec.h"
#include "kernels_vs_cmsis_data.h"

void kl_bench_start(void) __attribute__((noinline));
void kl_bench_start(void)
{
    __asm__ volatile("");
}

static int16_t y16[BENCH_MAX_ROWS];
static q7_t y8[BENCH_MAX_ROWS];
static q63_t dots[BENCH_MAX_ROWS];

static void print_values(char tag, int32_t shape, const int16_t *y16_or_0, const q7_t *y8_or_0,
                         uint32_t rows)
{
    uint32_t r;
    kl_harness_line_begin(tag, shape);
    for (r = 0; r < rows; r++) {
        kl_harness_line_int(y16_or_0 ? y16_or_0[r] : y8_or_0[r]);
    }
    kl_harness_line_end();
}

int main(void)
{
    int32_t s;
    uint32_t r;
    for (s = 0; s < BENCH_SHAPES; s++) {
        const bench_shape_t *shape = &bench_shapes[s];
        const uint32_t rows = shape->q15.numRows;
        const uint32_t cols = shape->q15.numCols;

        kl_bench_start();
        kiloml_bench_end();

        kl_bench_start();
        kl_matvec_s16_s16(shape->kiloml16, bench_x16, y16);
        kiloml_bench_end();
        print_values('a', s, y16, 0, rows);

        kl_bench_start();
        arm_mat_vec_mult_q15(&shape->q15, bench_x16, y16);
        kiloml_bench_end();
        print_values('b', s, y16, 0, rows);

        kl_bench_start();
        for (r = 0; r < rows; r++) {
            arm_dot_prod_q15(shape->q15.pData + r * cols, bench_x16, cols, &dots[r]);
        }
        kiloml_bench_end();
        kl_harness_line_begin('c', s);
        for (r = 0; r < rows; r++) {
            kl_harness_line_int((int32_t)(dots[r] >> 15));
        }
        kl_harness_line_end();

        kl_bench_start();
        kl_matvec_s16_s16(shape->kiloml8, bench_x16, y16);
        kiloml_bench_end();
        print_values('d', s, y16, 0, rows);

        kl_bench_start();
        arm_mat_vec_mult_q7(&shape->q7, bench_x8, y8);
        kiloml_bench_end();
        print_values('e', s, 0, y8, rows);
    }
    kl_harness_finish();
    return 0;
}
