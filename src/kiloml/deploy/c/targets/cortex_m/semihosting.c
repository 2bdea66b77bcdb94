/*
 * semihosting.c - ARM semihosting SYS_WRITE0 and SYS_EXIT for Cortex-M (Thumb: bkpt 0xab),
 * and the harness's output through them.
 */
#include "semihosting.h"

#include "harness.h"

#define KL_SYS_WRITE0 0x04
#define KL_SYS_EXIT 0x18
#define KL_ADP_STOPPED_APPLICATION_EXIT 0x20026
#define KL_ADP_STOPPED_RUN_TIME_ERROR 0x20023

static void kl_semihosting_call(uint32_t operation, uint32_t argument)
{
    register uint32_t r0 __asm__("r0") = operation;
    register uint32_t r1 __asm__("r1") = argument;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
}

void kl_semihosting_write(const char *text)
{
    kl_semihosting_call(KL_SYS_WRITE0, (uint32_t)(uintptr_t)text);
}

void kl_harness_write(const char *text)
{
    kl_semihosting_write(text);
}

void kl_semihosting_exit(int status)
{
    kl_semihosting_call(KL_SYS_EXIT, status == 0 ? KL_ADP_STOPPED_APPLICATION_EXIT
                                                 : KL_ADP_STOPPED_RUN_TIME_ERROR);
    for (;;) {
    }
}
