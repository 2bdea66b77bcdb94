/*
 * cortex_m_main.c - verification harness for QEMU MPS2: runs kiloml_predict on every input
 * of harness_inputs.h and prints "logits <i> <l0> <l1> ..." lines through semihosting, then
 * "stack <bytes>" (deepest stack use of one inference, measured by painting the stack) and
 * "done". kiloml_bench_end() is called right after each inference so that the instruction
 * counting plugin can stop counting there.
 */
#include <stdint.h>

#include "harness_inputs.h"
#include "model.h"
#include "semihosting.h"

#define KL_STACK_PAINT_BYTES 8192u
#define KL_STACK_PATTERN 0x5AA5C33Cu

void kiloml_bench_end(void) __attribute__((noinline));

void kiloml_bench_end(void)
{
    __asm__ volatile("" ::: "memory");
}

static kiloml_scratch_t scratch;
static int32_t logits[KILOML_NUM_CLASSES];
static char line[16 * (KILOML_NUM_CLASSES + 2)];

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

static void kl_print_pair(const char *label, int32_t value)
{
    char *out = line;
    while (*label != '\0') {
        *out++ = *label++;
    }
    out = kl_append_int(out, value);
    *out++ = '\n';
    *out = '\0';
    kl_semihosting_write(line);
}

static uint32_t kl_stack_pointer(void)
{
    uint32_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    return sp;
}

/* The stack below main's frame is painted before every inference (by main itself, so no
 * frame lives there while painting); after it, the lowest overwritten word marks the depth. */
int main(void)
{
    uint32_t top = kl_stack_pointer();
    volatile uint32_t *low = (volatile uint32_t *)(uintptr_t)(top - KL_STACK_PAINT_BYTES);
    volatile uint32_t *end = (volatile uint32_t *)(uintptr_t)top;
    volatile uint32_t *word;
    uint32_t deepest = 0;
    int i;
    int c;
    for (i = 0; i < KILOML_HARNESS_COUNT; i++) {
        char *out = line;
        uint32_t used;
        for (word = low; word < end; word++) {
            *word = KL_STACK_PATTERN;
        }
        kiloml_predict(kiloml_harness_inputs[i], &scratch, logits);
        kiloml_bench_end();
        for (word = low; word < end && *word == KL_STACK_PATTERN; word++) {
        }
        used = top - (uint32_t)(uintptr_t)word;
        deepest = used > deepest ? used : deepest;
        *out++ = 'l';
        *out++ = ' ';
        out = kl_append_int(out, i);
        for (c = 0; c < KILOML_NUM_CLASSES; c++) {
            *out++ = ' ';
            out = kl_append_int(out, logits[c]);
        }
        *out++ = '\n';
        *out = '\0';
        kl_semihosting_write(line);
    }
    kl_print_pair("stack ", (int32_t)deepest);
    kl_semihosting_write("done\n");
    return 0;
}
