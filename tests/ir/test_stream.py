"""The streaming ShaRNN spec: every brick of a long stream gives the logits of the window of
the last T frames exactly as the simulator computes them from scratch; nothing before a full
window; one-line errors for a bad frame or a graph that is not a ShaRNN."""

import numpy as np
import pytest
import torch

from kiloml.errors import KilomlError
from kiloml.ir import quantize_input, quantize_model, simulate
from kiloml.ir.stream import ShaRNNStream
from kiloml.models import build_model
from kiloml.nn.classifier import ModelConfig
from kiloml.nn.sharnn import ShaRNNConfig

STEPS, FEATURES, BRICK = 12, 3, 4


@pytest.mark.parametrize("cell, upper, readout", [("fastgrnn", "fastgrnn", "last"),
                                                  ("gru", "fastrnn", "mean")])
def test_the_stream_equals_every_window_recomputed(cell, upper, readout):
    torch.manual_seed(0)
    model = build_model(ShaRNNConfig(kind="sharnn", input_size=FEATURES, num_classes=3,
                                     brick_size=BRICK, cell=cell, upper_cell=upper,
                                     hidden_size=5, upper_hidden_size=6, readout=readout))
    rng = np.random.default_rng(0)
    graph = quantize_model(model.eval(), rng.normal(size=(32, STEPS, FEATURES)), 16)
    frames = quantize_input(graph, rng.normal(size=(1, 40, FEATURES)))[0]
    stream = ShaRNNStream(graph)
    got = {t: stream.push(frame) for t, frame in enumerate(frames)}
    decided = [t for t, logits in got.items() if logits is not None]
    assert decided == list(range(STEPS - 1, 40, BRICK))  # every brick once a window is full
    windows = np.stack([frames[t + 1 - STEPS:t + 1] for t in decided])
    assert np.array_equal(np.stack([got[t] for t in decided]), simulate(graph, windows))


def test_bad_frames_and_graphs_are_one_line_errors():
    torch.manual_seed(0)
    model = build_model(ShaRNNConfig(kind="sharnn", input_size=FEATURES, num_classes=2,
                                     brick_size=BRICK))
    graph = quantize_model(model.eval(), np.random.default_rng(0).normal(
        size=(8, STEPS, FEATURES)), 16)
    stream = ShaRNNStream(graph)
    with pytest.raises(KilomlError, match=r"a frame must hold 3 values, got shape \[4\]"):
        stream.push(np.zeros(4, dtype=np.int16))
    with pytest.raises(KilomlError, match="int16 values"):
        stream.push(np.array([0.5, np.nan, 1.0]))
    with pytest.raises(KilomlError, match="int16 values"):
        stream.push(np.array([0, 40000, 0]))
    assert all(stream.push(np.zeros(3, dtype=np.int16)) is None for _ in range(STEPS - 1))
    plain = build_model(ModelConfig(kind="fastgrnn", input_size=FEATURES, num_classes=2,
                                    hidden_size=4))
    plain_graph = quantize_model(plain.eval(), np.zeros((4, STEPS, FEATURES)) + 1.0, 16)
    with pytest.raises(KilomlError, match="needs a ShaRNN graph"):
        ShaRNNStream(plain_graph)
