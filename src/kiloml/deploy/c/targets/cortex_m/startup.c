/*
 * startup.c - vector table and reset handler for the QEMU MPS2 Cortex-M3/M4 harness: copy
 * .data from flash, zero .bss, run main() and report its status through semihosting. Any
 * fault prints a message and stops the emulator with a failure status.
 */
#include <stdint.h>

#include "semihosting.h"

extern uint32_t _sidata;
extern uint32_t _sdata;
extern uint32_t _edata;
extern uint32_t _sbss;
extern uint32_t _ebss;
extern uint32_t _estack;

int main(void);

void kl_reset_handler(void);
void kl_fault_handler(void);

void kl_reset_handler(void)
{
    const uint32_t *source = &_sidata;
    uint32_t *target;
    for (target = &_sdata; target < &_edata; target++) {
        *target = *source++;
    }
    for (target = &_sbss; target < &_ebss; target++) {
        *target = 0;
    }
    kl_semihosting_exit(main());
}

void kl_fault_handler(void)
{
    kl_semihosting_write("FAULT\n");
    kl_semihosting_exit(1);
}

/* Initial stack pointer, reset, NMI, HardFault, MemManage, BusFault, UsageFault. */
__attribute__((section(".isr_vector"), used)) static const uintptr_t kl_vector_table[] = {
    (uintptr_t)&_estack,
    (uintptr_t)kl_reset_handler,
    (uintptr_t)kl_fault_handler,
    (uintptr_t)kl_fault_handler,
    (uintptr_t)kl_fault_handler,
    (uintptr_t)kl_fault_handler,
    (uintptr_t)kl_fault_handler,
};
