/*
 * size_main.c - the smallest program that runs one inference. Built twice, with and without
 * KILOML_SIZE_BASELINE (which leaves kiloml_predict out), the difference of the two images'
 * text + data is the flash the model and the library need.
 */
#include <stdint.h>

#include "model.h"

static int16_t x[KILOML_STEPS * KILOML_INPUT_SIZE];
static kiloml_scratch_t scratch;
static int32_t logits[KILOML_NUM_CLASSES];

int main(void)
{
#ifdef KILOML_SIZE_BASELINE
    return (int)x[0] + scratch.h[0] + (int)logits[0];
#else
    return kiloml_predict(x, &scratch, logits);
#endif
}
