/*
 * pcm_stdin.c - host verification harness of kiloml_predict_pcm: argument 1 is the number of
 * samples N per signal; reads signals from stdin as raw little-endian int16 records of N
 * samples, runs kiloml_predict_pcm on each and prints one line per signal: the return value,
 * then the logits. With a second argument P (0..255) every work buffer (front end, scratch,
 * features) is filled with byte P before each call, to show that no stale state is read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiloml_pcm.h"

#define KL_MAX_SAMPLES (1 << 18)

int main(int argc, char **argv)
{
    static int16_t pcm[KL_MAX_SAMPLES];
    static kiloml_logmel_work_t work;
    static kiloml_scratch_t scratch;
    static int16_t features[KILOML_PCM_FEATURES_SIZE];
    int32_t logits[KILOML_NUM_CLASSES];
    int n = argc > 1 ? atoi(argv[1]) : 0;
    int poison = argc > 2 ? atoi(argv[2]) : -1;
    int c;
    if (n < 1 || n > KL_MAX_SAMPLES) {
        fprintf(stderr, "usage: %s SAMPLES [POISON] < signals\n", argv[0]);
        return 2;
    }
    while (fread(pcm, sizeof pcm[0], (size_t)n, stdin) == (size_t)n) {
        int label;
        if (poison >= 0) {
            memset(&work, poison, sizeof work);
            memset(&scratch, poison, sizeof scratch);
            memset(features, poison, sizeof features);
            memset(logits, poison, sizeof logits);
        }
        label = kiloml_predict_pcm(pcm, n, &work, &scratch, features, logits);
        printf("%d", label);
        for (c = 0; c < KILOML_NUM_CLASSES; c++) {
            printf(" %ld", label < 0 ? 0L : (long)logits[c]);
        }
        printf("\n");
    }
    return 0;
}
