/*
 * io_avr.c - the harness's output on the ATmega328P under kiloml's simavr driver: every
 * character is written to GPIOR0, which the driver (simavr_run.c) copies to its stdout.
 */
#include <avr/io.h>

#include "harness.h"

void kl_harness_write(const char *text)
{
    while (*text != '\0') {
        GPIOR0 = (uint8_t)*text++;
    }
}
