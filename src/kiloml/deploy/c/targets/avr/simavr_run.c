/*
 * simavr_run.c - runs an ATmega328P image (16 MHz) in simavr and prints what it writes to
 * GPIOR0 (io_avr.c) on stdout. With start and end addresses it also prints
 * "kiloml-cycles <n>" each time the program goes from start (the entry of the measured call)
 * to end (the entry of kiloml_bench_end): the AVR is cycle-counted, so n is the number of
 * clock cycles of one inference. The run stops at exit (the address of _exit), and fails
 * when the core crashes or runs past the cycle limit.
 *
 * usage: simavr_run program.elf exit_address [start_address end_address] [cycle_limit]
 * (addresses in bytes, as avr-nm prints them; built with the host compiler against
 * libsimavr by kiloml.deploy.targets).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "sim_avr.h"
#include "sim_elf.h"
#include "sim_io.h"

#define KL_CONSOLE 0x3E /* GPIOR0 in data space */
#define KL_FREQUENCY 16000000u

static void kl_console_write(struct avr_t *avr, avr_io_addr_t addr, uint8_t value, void *param)
{
    (void)avr;
    (void)addr;
    (void)param;
    putchar(value);
}

int main(int argc, char **argv)
{
    static elf_firmware_t firmware;
    avr_t *avr;
    unsigned long exit_pc, start_pc = 0, end_pc = 0;
    unsigned long long limit = 20000000000ull;
    avr_cycle_count_t begin = 0;
    int counting = 0, measuring = argc >= 5;
    if (argc < 3) {
        fprintf(stderr, "usage: %s program.elf exit [start end] [cycle_limit]\n", argv[0]);
        return 2;
    }
    exit_pc = strtoul(argv[2], NULL, 0);
    if (measuring) {
        start_pc = strtoul(argv[3], NULL, 0);
        end_pc = strtoul(argv[4], NULL, 0);
    }
    if (argc >= 6) {
        limit = strtoull(argv[5], NULL, 0);
    }
    if (elf_read_firmware(argv[1], &firmware) != 0) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 1;
    }
    avr = avr_make_mcu_by_name("atmega328p");
    if (avr == NULL) {
        fprintf(stderr, "simavr has no atmega328p\n");
        return 1;
    }
    avr_init(avr);
    avr->log = LOG_ERROR;
    firmware.frequency = KL_FREQUENCY;
    avr_load_firmware(avr, &firmware);
    avr->frequency = KL_FREQUENCY;
    avr_register_io_write(avr, KL_CONSOLE, kl_console_write, NULL);
    for (;;) {
        int state = avr_run(avr);
        unsigned long pc = (unsigned long)avr->pc;
        if (measuring && pc == start_pc && !counting) {
            counting = 1;
            begin = avr->cycle;
        } else if (measuring && pc == end_pc && counting) {
            counting = 0;
            printf("kiloml-cycles %llu\n", (unsigned long long)(avr->cycle - begin));
        }
        if (pc == exit_pc) {
            break;
        }
        if (state == cpu_Done || state == cpu_Crashed) {
            fflush(stdout);
            fprintf(stderr, "the AVR core stopped (state %d) at pc 0x%lx\n", state, pc);
            return 1;
        }
        if (avr->cycle > limit) {
            fflush(stdout);
            fprintf(stderr, "no exit within %llu cycles\n", limit);
            return 1;
        }
    }
    fflush(stdout);
    return 0;
}
