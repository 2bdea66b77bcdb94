/*
 * insn_count_plugin.c - QEMU TCG plugin (plugin API version 1) counting the guest
 * instructions executed from the entry of one function (start=ADDR) until the entry of
 * another (end=ADDR), once per call. Prints "kiloml-insns <count>" per counted interval at
 * exit.
 *
 * Counting is per translation block: a block starting at the start address switches counting
 * on (and is counted), a block starting at the end address switches it off (and is not).
 * Both addresses are function entries reached by calls, which always begin a block.
 *
 * QEMU does not install qemu-plugin.h on every distribution, so the few declarations used
 * here are written out; they match the stable plugin API of QEMU 4.2 to 7.x.
 *
 * Build: gcc -shared -fPIC -O2 -o insn_count_plugin.so insn_count_plugin.c
 * Run:   qemu-system-arm ... -plugin ./insn_count_plugin.so,start=0x...,end=0x...
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t;
struct qemu_plugin_tb;

enum qemu_plugin_cb_flags {
    QEMU_PLUGIN_CB_NO_REGS,
    QEMU_PLUGIN_CB_R_REGS,
    QEMU_PLUGIN_CB_RW_REGS,
};

typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id,
                                           qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb,
                                          qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags flags, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb,
                                    void *userdata);
void qemu_plugin_outs(const char *string);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

#define KL_MAX_INTERVALS 100000

/* Block user data: bit 62 = start block, bit 61 = end block, low bits = instruction count. */
#define KL_START_FLAG ((uint64_t)1 << 62)
#define KL_END_FLAG ((uint64_t)1 << 61)
#define KL_COUNT_MASK (KL_END_FLAG - 1)

static uint64_t start_address;
static uint64_t end_address;
static int counting;
static uint64_t current;
static uint64_t intervals[KL_MAX_INTERVALS];
static size_t interval_count;

static void kl_block_executed(unsigned int vcpu_index, void *userdata)
{
    uint64_t data = (uint64_t)(uintptr_t)userdata;
    (void)vcpu_index;
    if (data & KL_END_FLAG) {
        if (counting && interval_count < KL_MAX_INTERVALS) {
            intervals[interval_count++] = current;
        }
        counting = 0;
        return;
    }
    if (data & KL_START_FLAG) {
        counting = 1;
        current = 0;
    }
    if (counting) {
        current += data & KL_COUNT_MASK;
    }
}

static void kl_block_translated(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    uint64_t vaddr = qemu_plugin_tb_vaddr(tb) & ~(uint64_t)1;
    uint64_t data = (uint64_t)qemu_plugin_tb_n_insns(tb);
    (void)id;
    if (vaddr == start_address) {
        data |= KL_START_FLAG;
    } else if (vaddr == end_address) {
        data |= KL_END_FLAG;
    }
    qemu_plugin_register_vcpu_tb_exec_cb(tb, kl_block_executed, QEMU_PLUGIN_CB_NO_REGS,
                                         (void *)(uintptr_t)data);
}

static void kl_report(qemu_plugin_id_t id, void *userdata)
{
    char text[64];
    size_t i;
    (void)id;
    (void)userdata;
    for (i = 0; i < interval_count; i++) {
        snprintf(text, sizeof text, "kiloml-insns %" PRIu64 "\n", intervals[i]);
        qemu_plugin_outs(text);
    }
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id,
                                                               const qemu_info_t *info,
                                                               int argc, char **argv)
{
    int i;
    (void)info;
    for (i = 0; i < argc; i++) {
        if (strncmp(argv[i], "start=", 6) == 0) {
            start_address = strtoull(argv[i] + 6, NULL, 0) & ~(uint64_t)1;
        } else if (strncmp(argv[i], "end=", 4) == 0) {
            end_address = strtoull(argv[i] + 4, NULL, 0) & ~(uint64_t)1;
        }
    }
    if (start_address == 0 || end_address == 0) {
        fprintf(stderr, "insn_count_plugin: need start=ADDR and end=ADDR\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, kl_block_translated);
    qemu_plugin_register_atexit_cb(id, kl_report, NULL);
    return 0;
}
