/* io_host.c - the harness's output on the host: stdout. */
#include <stdio.h>

#include "harness.h"

void kl_harness_write(const char *text)
{
    fputs(text, stdout);
}
