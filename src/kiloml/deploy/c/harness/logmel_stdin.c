/*
 * logmel_stdin.c - host verification harness of the log-mel front end: reads one signal from
 * stdin as raw little-endian int16 samples (up to KL_MAX_SAMPLES), runs kiloml_logmel on it and
 * prints one line of KILOML_LOGMEL_N_MELS Q10 features per frame. With an argument P (0..255)
 * the work buffer is filled with byte P first, to show that no stale state is read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiloml_logmel.h"

#define KL_MAX_SAMPLES (1 << 18)
#define KL_MAX_FRAMES (KL_MAX_SAMPLES / KILOML_LOGMEL_HOP_LENGTH + 1)

int main(int argc, char **argv)
{
    static int16_t pcm[KL_MAX_SAMPLES];
    static int16_t features[KL_MAX_FRAMES * KILOML_LOGMEL_N_MELS];
    static kiloml_logmel_work_t work;
    int poison = argc > 1 ? atoi(argv[1]) : -1;
    int n = (int)fread(pcm, sizeof pcm[0], KL_MAX_SAMPLES, stdin);
    int frames;
    int f;
    int m;
    if (poison >= 0) {
        memset(&work, poison, sizeof work);
    }
    frames = kiloml_logmel(pcm, n, &work, features);
    for (f = 0; f < frames; f++) {
        for (m = 0; m < KILOML_LOGMEL_N_MELS; m++) {
            printf(m == 0 ? "%d" : " %d", features[f * KILOML_LOGMEL_N_MELS + m]);
        }
        printf("\n");
    }
    return 0;
}
