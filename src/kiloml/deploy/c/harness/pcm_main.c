/*
 * pcm_main.c - runs kiloml_predict_pcm on every record (an int16 signal) and prints
 * "l <index> <class> <logits...>" per record (class -1 and zero logits when the length is
 * refused), then "s <bytes>" (the deepest stack of one call, measured by painting; 0 on the
 * host) and "done".
 */
#include <stdint.h>

#include "harness.h"
#include "kiloml_pcm.h"

static kiloml_logmel_work_t work;
static kiloml_scratch_t scratch;
static int16_t features[KILOML_PCM_FEATURES_SIZE];
static int32_t logits[KILOML_NUM_CLASSES];

int main(void)
{
    uint32_t top;
    uint32_t i;
    int c;
    KL_STACK_TOP(top);
    for (i = 0; i < kl_harness_count(); i++) {
        uint32_t bytes;
        uint32_t used;
        const int16_t *pcm = (const int16_t *)kl_harness_record(i, &bytes);
        int label;
        kl_harness_poison(&work, sizeof work);
        kl_harness_poison(&scratch, sizeof scratch);
        kl_harness_poison(features, sizeof features);
        for (c = 0; c < KILOML_NUM_CLASSES; c++) {
            logits[c] = 0;
        }
        KL_STACK_PAINT(top);
        label = kiloml_predict_pcm(pcm, (int)(bytes / sizeof(int16_t)), &work, &scratch,
                                   features, logits);
        kiloml_bench_end();
        KL_STACK_USED(top, used);
        kl_harness_stack_used(used);
        kl_harness_line_begin('l', kl_harness_index(i));
        kl_harness_line_int(label);
        for (c = 0; c < KILOML_NUM_CLASSES; c++) {
            kl_harness_line_int(logits[c]);
        }
        kl_harness_line_end();
    }
    kl_harness_finish();
    return 0;
}
