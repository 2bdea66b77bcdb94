/*
 * insn_profile_plugin.c - QEMU TCG plugin (plugin API version 1) for
 * benchmarks/golden_costs.py --profile: instructions executed per translation block, printed
 * at exit as "kiloml-block <start address in hex> <instructions>" (executions times the
 * block's instructions). The script adds the blocks up per function from the image's symbol
 * table. Never part of kiloml; the counting plugin kiloml ships is
 * src/kiloml/deploy/c/targets/cortex_m/insn_count_plugin.c.
 *
 * Build: gcc -shared -fPIC -O2 -o insn_profile_plugin.so insn_profile_plugin.c
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>

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

#define KL_MAX_BLOCKS 65536

static uint64_t block_address[KL_MAX_BLOCKS];
static uint64_t block_insns[KL_MAX_BLOCKS];
static uint64_t block_runs[KL_MAX_BLOCKS];
static size_t block_count;

static void kl_block_executed(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    block_runs[(uintptr_t)userdata]++;
}

/* A block translated again (same start and length) keeps its slot. */
static void kl_block_translated(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    uint64_t address = qemu_plugin_tb_vaddr(tb);
    uint64_t insns = qemu_plugin_tb_n_insns(tb);
    size_t i;
    (void)id;
    for (i = 0; i < block_count; i++) {
        if (block_address[i] == address && block_insns[i] == insns) {
            break;
        }
    }
    if (i == block_count) {
        if (block_count == KL_MAX_BLOCKS) {
            return;
        }
        block_address[i] = address;
        block_insns[i] = insns;
        block_count++;
    }
    qemu_plugin_register_vcpu_tb_exec_cb(tb, kl_block_executed, QEMU_PLUGIN_CB_NO_REGS,
                                         (void *)(uintptr_t)i);
}

static void kl_report(qemu_plugin_id_t id, void *userdata)
{
    char text[96];
    size_t i;
    (void)id;
    (void)userdata;
    for (i = 0; i < block_count; i++) {
        if (block_runs[i] != 0) {
            snprintf(text, sizeof text, "kiloml-block %" PRIx64 " %" PRIu64 "\n",
                     block_address[i], block_runs[i] * block_insns[i]);
            qemu_plugin_outs(text);
        }
    }
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id,
                                                               const qemu_info_t *info,
                                                               int argc, char **argv)
{
    (void)info;
    (void)argc;
    (void)argv;
    qemu_plugin_register_vcpu_tb_trans_cb(id, kl_block_translated);
    qemu_plugin_register_atexit_cb(id, kl_report, NULL);
    return 0;
}
