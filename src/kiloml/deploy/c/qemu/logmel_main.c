/*
 * logmel_main.c - log-mel verification harness for QEMU MPS2: runs kiloml_logmel on every
 * signal of logmel_inputs.h and prints "f <signal> <frame> <v0> ... <v(N_MELS-1)>" per frame
 * through semihosting, then "done". kiloml_bench_end() is called right after each signal so
 * that the instruction counting plugin can count from kiloml_logmel's entry to there.
 */
#include <stdint.h>

#include "kiloml_logmel.h"
#include "logmel_inputs.h"
#include "semihosting.h"

void kiloml_bench_end(void) __attribute__((noinline));

void kiloml_bench_end(void)
{
    __asm__ volatile("" ::: "memory");
}

static kiloml_logmel_work_t work;
static int16_t features[KL_LOGMEL_MAX_FRAMES * KILOML_LOGMEL_N_MELS];
static char line[8 * (KILOML_LOGMEL_N_MELS + 4)];

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

int main(void)
{
    int i;
    int f;
    int m;
    for (i = 0; i < KL_LOGMEL_INPUT_COUNT; i++) {
        int frames = kiloml_logmel(kl_logmel_samples + kl_logmel_offsets[i],
                                   (int)(kl_logmel_offsets[i + 1] - kl_logmel_offsets[i]),
                                   &work, features);
        kiloml_bench_end();
        for (f = 0; f < frames; f++) {
            char *out = line;
            *out++ = 'f';
            *out++ = ' ';
            out = kl_append_int(out, i);
            *out++ = ' ';
            out = kl_append_int(out, f);
            for (m = 0; m < KILOML_LOGMEL_N_MELS; m++) {
                *out++ = ' ';
                out = kl_append_int(out, features[f * KILOML_LOGMEL_N_MELS + m]);
            }
            *out++ = '\n';
            *out = '\0';
            kl_semihosting_write(line);
        }
    }
    kl_semihosting_write("done\n");
    return 0;
}
