/*
 * size_main.c - the smallest program that runs one inference. Built twice, with and without
 * KILOML_SIZE_BASELINE (which leaves kiloml_predict out), the difference of the two images'
 * text + data is the flash the model and the library need.
 */
#include <stdint.h>

#include "model.h"

static kiloml_input_t x[KILOML_INPUT_COUNT];
static kiloml_scratch_t scratch;
static kiloml_output_t outputs[KILOML_OUTPUT_COUNT];

int main(void)
{
#ifdef KILOML_SIZE_BASELINE
    return (int)x[0] + (int)scratch.s8[0] + (int)outputs[0];
#else
    return kiloml_predict(x, &scratch, outputs);
#endif
}
