/*
 * model_main.c - runs kiloml_predict on every record (one input of KILOML_INPUT_COUNT values)
 * and prints "l <index> <returned class> <outputs...>" per record, then "stack <bytes>" (the
 * deepest stack of one inference, measured by painting; 0 on the host) and "done".
 */
#include <stdint.h>

#include "harness.h"
#include "model.h"

static kiloml_scratch_t scratch;
static kiloml_output_t outputs[KILOML_OUTPUT_COUNT];
#if defined(__AVR__)
static kiloml_input_t input[KILOML_INPUT_COUNT]; /* records are in program memory */
#endif

#if defined(__AVR__)
/* main never returns to avr-libc's start-up code: no registers to save (2 KB of RAM). */
int main(void) __attribute__((OS_main));
#endif

int main(void)
{
    uint32_t top;
    uint32_t i;
    int c;
    KL_STACK_TOP(top);
    for (i = 0; i < kl_harness_count(); i++) {
        uint32_t bytes;
        uint32_t used;
        const kiloml_input_t *x = (const kiloml_input_t *)kl_harness_record(i, &bytes);
        int result;
        if (bytes != sizeof(kiloml_input_t) * KILOML_INPUT_COUNT) {
            kl_harness_text(KL_TEXT("bad record size\n"));
            return 1;
        }
#if defined(__AVR__)
        kl_harness_copy(x, input, bytes);
        x = input;
#endif
        kl_harness_poison(&scratch, sizeof scratch);
        KL_STACK_PAINT(top);
        result = kiloml_predict(x, &scratch, outputs);
        kiloml_bench_end();
        KL_STACK_USED(top, used);
        kl_harness_stack_used(used);
        kl_harness_line_begin('l', kl_harness_index(i));
        kl_harness_line_int(result);
        for (c = 0; c < KILOML_OUTPUT_COUNT; c++) {
            kl_harness_line_int(outputs[c]);
        }
        kl_harness_line_end();
    }
    kl_harness_finish();
    return 0;
}
