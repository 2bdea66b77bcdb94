/*
 * kernel_costs_main.c - the program of benchmarks/kernel_costs.py: one kl_matvec_s16_s32 call
 * per matrix of kernel_costs_data.h (generated: matrices stored dense, CSR and blocked at
 * several shapes and densities), each between kl_bench_start() and kiloml_bench_end() so that
 * the QEMU plugin counts its instructions, after an empty interval (the markers' cost, which the
 * script subtracts). Prints every result ("r <matrix> <values...>") for the script to check
 * against kiloml's spec.
 */
#include <stdint.h>

#include "harness.h"
#include "kl_matvec.h"
#include "kernel_costs_data.h"

void kl_bench_start(void) __attribute__((noinline));
void kl_bench_start(void)
{
    __asm__ volatile("");
}

static int32_t y[COST_MAX_ROWS];

int main(void)
{
    int32_t i;
    uint32_t r;
    kl_bench_start();
    kiloml_bench_end();
    for (i = 0; i < COST_MATRICES; i++) {
        const kl_matrix_t *m = cost_matrices[i];
        kl_bench_start();
        kl_matvec_s16_s32(m, cost_x, 0, y);
        kiloml_bench_end();
        kl_harness_line_begin('r', i);
        for (r = 0; r < m->rows; r++) {
            kl_harness_line_int(y[r]);
        }
        kl_harness_line_end();
    }
    kl_harness_finish();
    return 0;
}
