/*
 * harness.h - what every verification program shares, on every target: the records it runs
 * on, compiled into the program as one blob (kl_blob, from blob.S: .incbin), a line printer,
 * the instruction-counting marker and stack painting.
 *
 * Blob layout (little-endian uint32 words): magic 0x4C424C4B ("KLBL"), record count, index
 * of the first record, poison byte (256: none), then per record its byte offset from the start
 * of the data (a multiple of 4) and its length in bytes, then the data.
 *
 * Output lines are "<tag> <index> <integers...>"; kl_harness_write is the target's way out
 * (stdout on the host, semihosting on Cortex-M, a register the simulator prints on AVR).
 * On AVR the blob is in program memory (read with kl_flash.h's macros), so a record is copied
 * to RAM (kl_harness_copy) before a kernel reads it.
 */
#ifndef KL_HARNESS_H
#define KL_HARNESS_H

#include <stdint.h>

/* Number of records, and record i (its bytes in *bytes). */
uint32_t kl_harness_count(void);
const void *kl_harness_record(uint32_t i, uint32_t *bytes);
/* Global index of record i (blobs may be one chunk of a larger set). */
int32_t kl_harness_index(uint32_t i);
/* Copy the n bytes of a record to RAM at ram. */
void kl_harness_copy(const void *record, void *ram, uint32_t n);
/* Fill n bytes at p with the blob's poison byte, if it has one. */
void kl_harness_poison(void *p, uint32_t n);

/* Write text (implemented per target). */
void kl_harness_write(const char *text);
/* Write a KL_TEXT literal (kept in program memory on AVR, out of its 2 KB of RAM). */
void kl_harness_text(const char *text);
#if defined(__AVR__)
#include <avr/pgmspace.h>
#define KL_TEXT(s) PSTR(s)
#else
#define KL_TEXT(s) (s)
#endif
/* Lines of integers: begin with a tag and an index, add values, end prints the line. */
void kl_harness_line_begin(char tag, int32_t index);
void kl_harness_line_int(int32_t value);
void kl_harness_line_end(void);

/* Keep the deepest stack measured so far (bytes); finish prints it ("s <bytes>") and "done". */
void kl_harness_stack_used(uint32_t used);
void kl_harness_finish(void);

/* Called right after the measured call: the instruction counter stops at its entry. */
void kiloml_bench_end(void) __attribute__((noinline));

/* Stack painting (Cortex-M, AVR): main paints the stack below its own frame before a call
 * and finds the deepest overwritten word after it. On the host the depth reads 0. */
#define KL_STACK_PAINT_BYTES 8192u
#define KL_STACK_PATTERN 0x5AA5C33Cu
#if defined(__arm__)
#define KL_STACK_TOP(top) __asm__ volatile("mov %0, sp" : "=r"(top))
#define KL_STACK_PAINT(top)                                                              \
    do {                                                                                 \
        volatile uint32_t *kl_word_ = (volatile uint32_t *)(uintptr_t)((top) -           \
                                                                      KL_STACK_PAINT_BYTES); \
        while (kl_word_ < (volatile uint32_t *)(uintptr_t)(top)) {                       \
            *kl_word_++ = KL_STACK_PATTERN;                                              \
        }                                                                                \
    } while (0)
#define KL_STACK_USED(top, used)                                                         \
    do {                                                                                 \
        volatile uint32_t *kl_word_ = (volatile uint32_t *)(uintptr_t)((top) -           \
                                                                      KL_STACK_PAINT_BYTES); \
        while (kl_word_ < (volatile uint32_t *)(uintptr_t)(top) &&                       \
               *kl_word_ == KL_STACK_PATTERN) {                                          \
            kl_word_++;                                                                  \
        }                                                                                \
        (used) = (top) - (uint32_t)(uintptr_t)kl_word_;                                  \
    } while (0)
#elif defined(__AVR__)
/* AVR: the free RAM between the end of .bss (__heap_start) and the stack pointer, bytewise. */
#include <avr/io.h>
extern char __heap_start;
#define KL_STACK_BYTE 0xC3u
#define KL_STACK_TOP(top) ((top) = (uint32_t)SP)
#define KL_STACK_PAINT(top)                                                              \
    do {                                                                                 \
        volatile uint8_t *kl_byte_ = (volatile uint8_t *)&__heap_start;                  \
        while (kl_byte_ < (volatile uint8_t *)(uintptr_t)(top)) {                        \
            *kl_byte_++ = KL_STACK_BYTE;                                                 \
        }                                                                                \
    } while (0)
#define KL_STACK_USED(top, used)                                                         \
    do {                                                                                 \
        volatile uint8_t *kl_byte_ = (volatile uint8_t *)&__heap_start;                  \
        while (kl_byte_ < (volatile uint8_t *)(uintptr_t)(top) && *kl_byte_ == KL_STACK_BYTE) { \
            kl_byte_++;                                                                  \
        }                                                                                \
        (used) = (top) + 1u - (uint32_t)(uintptr_t)kl_byte_;                             \
    } while (0)
#else
#define KL_STACK_TOP(top) ((top) = 0)
#define KL_STACK_PAINT(top) ((void)(top))
#define KL_STACK_USED(top, used) ((used) = 0 * (top))
#endif

#endif /* KL_HARNESS_H */
