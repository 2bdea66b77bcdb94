/* harness.c - the blob reader and line printer of harness.h. */
#include "harness.h"

#include "kl_flash.h"

#define KL_BLOB_MAGIC 0x4C424C4Bu
#if defined(__AVR__)
#define KL_LINE_BYTES 1 /* 2 KB of RAM: each character leaves on its own */
#define KL_LINE_SPARE 1
#else
#define KL_LINE_BYTES 256
#define KL_LINE_SPARE 16
#endif

extern const uint32_t kl_blob[];

static char kl_line[KL_LINE_BYTES + KL_LINE_SPARE];
static uint32_t kl_line_used;
static uint32_t kl_deepest;

void kiloml_bench_end(void)
{
    __asm__ volatile("" ::: "memory");
}

uint32_t kl_harness_count(void)
{
    return KL_READ_U32(&kl_blob[0]) == KL_BLOB_MAGIC ? KL_READ_U32(&kl_blob[1]) : 0u;
}

int32_t kl_harness_index(uint32_t i)
{
    return (int32_t)(KL_READ_U32(&kl_blob[2]) + i);
}

const void *kl_harness_record(uint32_t i, uint32_t *bytes)
{
    const uint32_t *table = kl_blob + 4;
    const uint8_t *data = (const uint8_t *)(table + 2 * KL_READ_U32(&kl_blob[1]));
    *bytes = KL_READ_U32(&table[2 * i + 1]);
    return data + KL_READ_U32(&table[2 * i]);
}

void kl_harness_copy(const void *record, void *ram, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; i++) {
        ((uint8_t *)ram)[i] = KL_READ_U8(&((const uint8_t *)record)[i]);
    }
}

void kl_harness_poison(void *p, uint32_t n)
{
    uint8_t *bytes = (uint8_t *)p;
    uint32_t i;
    const uint32_t poison = KL_READ_U32(&kl_blob[3]);
    if (poison > 255u) {
        return;
    }
    for (i = 0; i < n; i++) {
        bytes[i] = (uint8_t)poison;
    }
}

static void kl_line_flush(void)
{
    kl_line[kl_line_used] = '\0';
    kl_harness_write(kl_line);
    kl_line_used = 0;
}

static void kl_line_char(char c)
{
    if (kl_line_used >= KL_LINE_BYTES) {
        kl_line_flush();
    }
    kl_line[kl_line_used++] = c;
}

static void kl_line_decimal(int32_t value)
{
    char digits[12];
    int count = 0;
    uint32_t magnitude = value < 0 ? 0u - (uint32_t)value : (uint32_t)value;
    if (value < 0) {
        kl_line_char('-');
    }
    do {
        digits[count++] = (char)('0' + magnitude % 10u);
        magnitude /= 10u;
    } while (magnitude != 0u);
    while (count > 0) {
        kl_line_char(digits[--count]);
    }
}

void kl_harness_line_begin(char tag, int32_t index)
{
    kl_line_used = 0;
    kl_line_char(tag);
    kl_line_char(' ');
    kl_line_decimal(index);
}

void kl_harness_line_int(int32_t value)
{
    kl_line_char(' ');
    kl_line_decimal(value);
}

void kl_harness_line_end(void)
{
    kl_line_char('\n');
    kl_line_flush();
}

void kl_harness_text(const char *text)
{
    char c;
    kl_line_used = 0;
    while ((c = (char)KL_READ_U8(text++)) != '\0') {
        kl_line_char(c);
    }
    kl_line_flush();
}

void kl_harness_stack_used(uint32_t used)
{
    kl_deepest = used > kl_deepest ? used : kl_deepest;
}

void kl_harness_finish(void)
{
    kl_harness_line_begin('s', (int32_t)kl_deepest);
    kl_harness_line_end();
    kl_harness_text(KL_TEXT("done\n"));
}
