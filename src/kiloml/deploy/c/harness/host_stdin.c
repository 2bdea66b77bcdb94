/*
 * host_stdin.c - host verification harness: reads inputs from stdin as raw little-endian
 * int16 records of KILOML_STEPS * KILOML_INPUT_SIZE values, runs kiloml_predict on each and
 * prints one line of logits per input. With an argument P (0..255) the scratch buffer is
 * filled with byte P before every inference, to show that no stale state is read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

int main(int argc, char **argv)
{
    static int16_t x[KILOML_STEPS * KILOML_INPUT_SIZE];
    static kiloml_scratch_t scratch;
    int32_t logits[KILOML_NUM_CLASSES];
    int poison = argc > 1 ? atoi(argv[1]) : -1;
    int c;
    while (fread(x, sizeof x[0], KILOML_STEPS * KILOML_INPUT_SIZE, stdin) ==
           KILOML_STEPS * KILOML_INPUT_SIZE) {
        if (poison >= 0) {
            memset(&scratch, poison, sizeof scratch);
        }
        kiloml_predict(x, &scratch, logits);
        for (c = 0; c < KILOML_NUM_CLASSES; c++) {
            printf(c == 0 ? "%ld" : " %ld", (long)logits[c]);
        }
        printf("\n");
    }
    return 0;
}
