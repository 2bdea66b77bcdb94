/*
 * logmel_main.c - runs kiloml_logmel on every record (an int16 signal of any length up to
 * KL_LOGMEL_MAX_FRAMES frames) and prints "f <index> <frame> <features...>" per frame, then
 * "done".
 */
#include <stdint.h>

#include "harness.h"
#include "kiloml_logmel.h"

#ifndef KL_LOGMEL_MAX_FRAMES
#define KL_LOGMEL_MAX_FRAMES 128
#endif

static kiloml_logmel_work_t work;
static int16_t features[KL_LOGMEL_MAX_FRAMES * KILOML_LOGMEL_N_MELS];

int main(void)
{
    uint32_t i;
    int f;
    int m;
    for (i = 0; i < kl_harness_count(); i++) {
        uint32_t bytes;
        const int16_t *pcm = (const int16_t *)kl_harness_record(i, &bytes);
        int samples = (int)(bytes / sizeof(int16_t));
        int frames;
        if (kiloml_logmel_num_frames(samples) > KL_LOGMEL_MAX_FRAMES) {
            kl_harness_write("too many frames\n");
            return 1;
        }
        kl_harness_poison(&work, sizeof work);
        frames = kiloml_logmel(pcm, samples, &work, features);
        kiloml_bench_end();
        for (f = 0; f < frames; f++) {
            kl_harness_line_begin('f', kl_harness_index(i));
            kl_harness_line_int(f);
            for (m = 0; m < KILOML_LOGMEL_N_MELS; m++) {
                kl_harness_line_int(features[f * KILOML_LOGMEL_N_MELS + m]);
            }
            kl_harness_line_end();
        }
    }
    kl_harness_write("done\n");
    return 0;
}
