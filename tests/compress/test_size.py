"""Model-size and MAC accounting follows the documented storage rules."""

import torch

from kiloml.compress.kernel_cost import predicted_instructions
from kiloml.compress.size import (
    SPEED_MARGIN,
    blocked_bytes,
    csr_bytes,
    macs_per_inference,
    model_size_bytes,
    model_storage,
    nonzero_blocks,
    tensor_storage,
)
from kiloml.nn import ModelConfig, build_model


def test_dense_vs_csr_choice_and_bytes():
    dense = torch.ones(4, 8)
    assert tensor_storage("w", dense, 4).bytes == 4 * 8 * 4
    sparse = torch.zeros(4, 8)
    sparse[0, 1] = sparse[3, 7] = 1.0
    s = tensor_storage("w", sparse, 4)
    assert s.format == "csr" and s.bytes == 2 * (4 + 1) + 5 * 2 == csr_bytes(4, 8, 2, 4)
    assert tensor_storage("w", sparse, 1, scale_bytes=1).bytes == 2 * 2 + 5 * 2 + 1
    assert csr_bytes(2, 300, 3, 2) == 3 * (2 + 2) + 3 * 2  # uint16 column indices past 256
    assert tensor_storage("s", torch.ones(1, 1), 4).format == "scalar"


def test_blocked_storage_bytes_and_when_it_applies():
    w = torch.zeros(6, 16)
    w[0, 4:8] = w[3, 0:4] = w[3, 12:16] = 1.0  # blocks (0, 1), (3, 0), (3, 3)
    assert nonzero_blocks(w) == 3
    s = tensor_storage("w", w, 2, scale_bytes=1)
    assert (s.format, s.bytes, s.stored) == ("blocked", 3 * (8 + 1) + 7 * 2 + 1, 12)
    assert s.bytes == blocked_bytes(6, 3, 2) + 1 < csr_bytes(6, 16, 12, 2) + 1
    w[3, 13] = 0.0  # a block need not be full
    assert nonzero_blocks(w) == 3 and tensor_storage("w", w, 2, 1).format == "blocked"
    assert nonzero_blocks(torch.ones(3, 6)) is None  # 6 columns: not whole blocks
    assert nonzero_blocks(torch.ones(2, 1028)) is None  # 257 blocks: past uint8 indices
    assert nonzero_blocks(torch.ones(2, 1024)) == 512


def test_speed_rule_takes_the_fewest_predicted_instructions():
    w = torch.ones(8, 32)
    w[:, ::2] = 0.0  # half the weights, every block holding some: dense reads fewest per MAC
    by_bytes, by_speed = tensor_storage("w", w, 2, 1), tensor_storage("w", w, 2, 1, by="speed")
    assert by_bytes.format == "csr" and by_speed.format == "dense"
    assert by_speed.predicted_instructions < (1 - SPEED_MARGIN) * by_bytes.predicted_instructions
    assert by_speed.predicted_instructions == predicted_instructions("dense", 16, 8, 32, 256)
    assert tensor_storage("w", w, 4, by="speed").format == "csr"  # float32: no kernel, bytes


def test_speed_rule_keeps_the_smaller_format_within_the_margin():
    w = torch.ones(8, 16)
    w[:, ::2] = 0.0  # dense predicted faster than CSR, by less than the cost model's error
    by_bytes, by_speed = tensor_storage("w", w, 2, 1), tensor_storage("w", w, 2, 1, by="speed")
    dense = predicted_instructions("dense", 16, 8, 16, 128)
    assert (1 - SPEED_MARGIN) * by_bytes.predicted_instructions <= dense
    assert dense < by_bytes.predicted_instructions
    assert by_speed == by_bytes and by_speed.format == "csr"


def test_empty_rows_lower_the_predicted_cost_of_sparse_int8_rows():
    w = torch.zeros(40, 6)
    w[::8, :3] = 1.0  # 5 rows of 3 nonzeros, 35 rows empty
    s = tensor_storage("w", w, 1, 1, by="speed")
    assert s.format == "csr" and s.stored == 15
    assert s.predicted_instructions == predicted_instructions("csr", 8, 40, 6, 15, empty_rows=35)
    assert s.predicted_instructions < predicted_instructions("csr", 8, 40, 6, 15)
    # the narrow dense int8 kernel is not predicted faster than these mostly empty rows
    assert s.predicted_instructions < predicted_instructions("dense", 8, 40, 6, 240)


def test_model_size_counts_every_tensor():
    model = build_model(ModelConfig(kind="fastgrnn", input_size=6, num_classes=7, hidden_size=32,
                                    u_rank=8))
    # W 32x6, U1 8x32, U2 32x8, 2 biases of 32, zeta, nu, head 7x32 + 7, mean/std of 6
    values = 192 + 256 + 256 + 64 + 2 + 224 + 7 + 12
    assert model_size_bytes(model) == 4 * values
    # int8: one scale byte per weight tensor (7); mean/std int16 (+12, the std with a scale
    # byte), zeta/nu int16 (+2)
    assert model_size_bytes(model, value_bytes=1) == values + 7 + 12 + 1 + 2
    with torch.no_grad():
        model.rnn.cell.U1.zero_()
        model.rnn.cell.U1[0, ::8] = 1.0  # four nonzeros in four blocks of 4
    u1 = next(t for t in model_storage(model) if t.name == "rnn.cell.U1")
    assert u1.format == "csr" and u1.bytes == 4 * 5 + 9 * 2
    with torch.no_grad():
        model.rnn.cell.U1.zero_()
        model.rnn.cell.U1[0, :4] = 1.0  # one block of four
    u1 = next(t for t in model_storage(model) if t.name == "rnn.cell.U1")
    assert u1.format == "blocked" and u1.bytes == 1 * (4 * 4 + 1) + 9 * 2


def test_macs_follow_the_sparse_low_rank_structure():
    model = build_model(ModelConfig(kind="fastgrnn", input_size=6, num_classes=7, hidden_size=32,
                                    w_rank=3, u_rank=8))
    per_step = 6 + (3 * 6 + 32 * 3 + 8 * 32 + 32 * 8) + 3 * 32
    assert macs_per_inference(model, 128) == 128 * per_step + 7 * 32
    with torch.no_grad():
        model.rnn.cell.U1[:, :16] = 0.0
    assert macs_per_inference(model, 128) == 128 * (per_step - 8 * 16) + 7 * 32
    gru = build_model(ModelConfig(kind="gru", input_size=6, num_classes=7, hidden_size=32))
    assert macs_per_inference(gru, 10) == 10 * (6 + 3 * 32 * (6 + 32) + 3 * 32) + 7 * 32
