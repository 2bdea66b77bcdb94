/*
 * kl_flash.h - constants kept in flash, and how kernels read them.
 *
 * On Harvard cores such as the 8-bit AVR, const data is copied to RAM at start-up unless it
 * is placed in program memory (PROGMEM), which ordinary loads cannot read. Every array of
 * weights or tables is declared with KL_CONST after its name, and the kernels read its
 * elements with the KL_READ_* macros of the element type: LPM (pgm_read_*) on AVR, a plain
 * dereference everywhere else (the same code as before these macros existed).
 *
 * The descriptors (kl_matrix_t and each op's params struct) are KL_CONST too. Kernels read
 * descriptors in RAM: on AVR (KL_DESCRIPTORS_IN_FLASH) each op's entry function copies its
 * params, and the matrices they point to, into locals with kl_flash_copy; elsewhere the
 * copies are compiled out. FastGRNN, which holds them for a whole sequence, reads its params'
 * fields where it uses them and copies one matrix at a time instead (kl_fastgrnn.c).
 */
#ifndef KL_FLASH_H
#define KL_FLASH_H

#include <stdint.h>

#if defined(__AVR__)
#include <avr/pgmspace.h>
#include <stddef.h>
#define KL_DESCRIPTORS_IN_FLASH 1
#define KL_CONST PROGMEM
#define KL_READ_S8(p) ((int8_t)pgm_read_byte(p))
#define KL_READ_U8(p) ((uint8_t)pgm_read_byte(p))
#define KL_READ_S16(p) ((int16_t)pgm_read_word(p))
#define KL_READ_U16(p) ((uint16_t)pgm_read_word(p))
#define KL_READ_U32(p) ((uint32_t)pgm_read_dword(p))
#define KL_READ_PTR(p) ((const void *)pgm_read_word(p))

/* ram, holding a copy of the n bytes at p in program memory; NULL for a NULL p. */
static inline void *kl_flash_copy(void *ram, const void *p, size_t n)
{
    if (p == 0) {
        return 0;
    }
    memcpy_P(ram, p, n);
    return ram;
}
#else
#define KL_DESCRIPTORS_IN_FLASH 0
#define KL_CONST
#define KL_READ_S8(p) (*(const int8_t *)(p))
#define KL_READ_U8(p) (*(const uint8_t *)(p))
#define KL_READ_S16(p) (*(const int16_t *)(p))
#define KL_READ_U16(p) (*(const uint16_t *)(p))
#define KL_READ_U32(p) (*(const uint32_t *)(p))
#endif

#endif /* KL_FLASH_H */
