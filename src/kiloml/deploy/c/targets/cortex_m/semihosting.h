/*
 * semihosting.h - the two ARM semihosting calls the Cortex-M harness needs (bkpt 0xab).
 */
#ifndef KL_SEMIHOSTING_H
#define KL_SEMIHOSTING_H

#include <stdint.h>

/* Print a NUL-terminated string on the host's console (SYS_WRITE0). */
void kl_semihosting_write(const char *text);

/* Stop the emulator (SYS_EXIT); QEMU exits with status 0 when status is 0, else 1. */
void kl_semihosting_exit(int status) __attribute__((noreturn));

#endif /* KL_SEMIHOSTING_H */
