/*
 * stream_main.c - pushes every record (one stream: frames of KILOML_INPUT_SIZE values, one
 * after another) through kiloml_stream_push from a fresh kiloml_stream_init, and prints
 * "l <record> <frame> <returned class> <logits...>" for every push that returns a class, then
 * "stack <bytes>" (the deepest stack of one push, measured by painting; 0 on the host) and
 * "done". kiloml_bench_end follows every push, so the instruction counter counts each push.
 */
#include <stdint.h>

#include "harness.h"
#include "model.h"

static kiloml_stream_t state;
static kiloml_output_t outputs[KILOML_OUTPUT_COUNT];
#if defined(__AVR__)
static kiloml_input_t frame[KILOML_INPUT_SIZE]; /* records are in program memory */
#endif

int main(void)
{
    uint32_t top;
    uint32_t i;
    int c;
    KL_STACK_TOP(top);
    for (i = 0; i < kl_harness_count(); i++) {
        uint32_t bytes;
        uint32_t t;
        const kiloml_input_t *x = (const kiloml_input_t *)kl_harness_record(i, &bytes);
        if (bytes % (sizeof(kiloml_input_t) * KILOML_INPUT_SIZE) != 0) {
            kl_harness_write("bad record size\n");
            return 1;
        }
        kl_harness_poison(&state, sizeof state);
        kiloml_stream_init(&state);
        for (t = 0; t < bytes / (sizeof(kiloml_input_t) * KILOML_INPUT_SIZE); t++) {
            const kiloml_input_t *f = x + t * KILOML_INPUT_SIZE;
            uint32_t used;
            int result;
#if defined(__AVR__)
            kl_harness_copy(f, frame, sizeof frame);
            f = frame;
#endif
            KL_STACK_PAINT(top);
            result = kiloml_stream_push(&state, f, outputs);
            kiloml_bench_end();
            KL_STACK_USED(top, used);
            kl_harness_stack_used(used);
            if (result == KILOML_STREAM_NONE) {
                continue;
            }
            kl_harness_line_begin('l', kl_harness_index(i));
            kl_harness_line_int((int32_t)t);
            kl_harness_line_int(result);
            for (c = 0; c < KILOML_OUTPUT_COUNT; c++) {
                kl_harness_line_int(outputs[c]);
            }
            kl_harness_line_end();
        }
    }
    kl_harness_finish();
    return 0;
}
