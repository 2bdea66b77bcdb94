/*
 * pcm_main.c - verification harness of kiloml_predict_pcm for QEMU MPS2: classifies every
 * signal of pcm_inputs.h and prints "l <i> <class> <l0> <l1> ..." per signal through
 * semihosting, then "stack <bytes>" (deepest stack of one call, measured by painting) and
 * "done". kiloml_bench_end() is called right after each call so that the instruction counting
 * plugin can count from the entry of kiloml_predict_pcm (or kiloml_predict) to there.
 */
#include <stdint.h>

#include "kiloml_pcm.h"
#include "pcm_inputs.h"
#include "semihosting.h"

#define KL_STACK_PAINT_BYTES 8192u
#define KL_STACK_PATTERN 0x5AA5C33Cu

void kiloml_bench_end(void) __attribute__((noinline));

void kiloml_bench_end(void)
{
    __asm__ volatile("" ::: "memory");
}

static kiloml_logmel_work_t work;
static kiloml_scratch_t scratch;
static int16_t features[KILOML_PCM_FEATURES_SIZE];
static int32_t logits[KILOML_NUM_CLASSES];
static char line[16 * (KILOML_NUM_CLASSES + 3)];

static char *kl_append_int(char *out, int32_t value)
{
    char digits[12];
    int count = 0;
    uint32_t magnitude = value < 0 ? 0u - (uint32_t)value : (uint32_t)value;
    if (value < 0) {
        *out++ = '-';
    }
    do {
        digits[count++] = (char)('0' + magnitude % 10u);
        magnitude /= 10u;
    } while (magnitude != 0u);
    while (count > 0) {
        *out++ = digits[--count];
    }
    return out;
}

static uint32_t kl_stack_pointer(void)
{
    uint32_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    return sp;
}

int main(void)
{
    uint32_t top = kl_stack_pointer();
    volatile uint32_t *low = (volatile uint32_t *)(uintptr_t)(top - KL_STACK_PAINT_BYTES);
    volatile uint32_t *end = (volatile uint32_t *)(uintptr_t)top;
    volatile uint32_t *word;
    uint32_t deepest = 0;
    int i;
    int c;
    for (i = 0; i < KL_PCM_INPUT_COUNT; i++) {
        char *out = line;
        uint32_t used;
        int label;
        for (word = low; word < end; word++) {
            *word = KL_STACK_PATTERN;
        }
        label = kiloml_predict_pcm(kl_pcm_samples + (int32_t)i * KL_PCM_SIGNAL_SAMPLES,
                                   KL_PCM_SIGNAL_SAMPLES, &work, &scratch, features, logits);
        kiloml_bench_end();
        for (word = low; word < end && *word == KL_STACK_PATTERN; word++) {
        }
        used = top - (uint32_t)(uintptr_t)word;
        deepest = used > deepest ? used : deepest;
        *out++ = 'l';
        *out++ = ' ';
        out = kl_append_int(out, i);
        *out++ = ' ';
        out = kl_append_int(out, label);
        for (c = 0; c < KILOML_NUM_CLASSES; c++) {
            *out++ = ' ';
            out = kl_append_int(out, logits[c]);
        }
        *out++ = '\n';
        *out = '\0';
        kl_semihosting_write(line);
    }
    {
        char *out = line;
        const char *label = "stack ";
        while (*label != '\0') {
            *out++ = *label++;
        }
        out = kl_append_int(out, (int32_t)deepest);
        *out++ = '\n';
        *out = '\0';
        kl_semihosting_write(line);
    }
    kl_semihosting_write("done\n");
    return 0;
}
