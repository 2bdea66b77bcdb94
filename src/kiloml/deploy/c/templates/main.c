/*
 * main.c - example: classify the test vectors in test_vectors.h and check the logits against
 * the integer reference computed at export time. Exit status 0 when all match.
 */
#include <stdio.h>

#include "model.h"
#include "test_vectors.h"

int main(void)
{
    static kiloml_scratch_t scratch;
    kiloml_output_t logits[KILOML_OUTPUT_COUNT];
    int mismatches = 0;
    int i;
    int c;
    for (i = 0; i < KILOML_TEST_COUNT; i++) {
        int predicted = kiloml_predict(kiloml_test_inputs[i], &scratch, logits);
        for (c = 0; c < KILOML_NUM_CLASSES; c++) {
            if (logits[c] != kiloml_test_logits[i][c]) {
                mismatches++;
                break;
            }
        }
        printf("input %d: class %d (label %d)\n", i, predicted, (int)kiloml_test_labels[i]);
    }
    printf("%d of %d inputs match the reference logits exactly\n", KILOML_TEST_COUNT - mismatches,
           KILOML_TEST_COUNT);
    return mismatches == 0 ? 0 : 1;
}
