"""The streaming C API of a ShaRNN export equals the integer streaming spec on whole streams
(several windows, a stream of exactly one window, one shorter than a brick), bit for bit, on
the host and on Cortex-M4/M3; after one full window it equals kiloml_predict on that window;
other models get no streaming API."""

from pathlib import Path

import numpy as np
import pytest
import torch

from kiloml import runs
from kiloml.deploy.codegen import c_sources, generate_model
from kiloml.deploy.export import export_run, write_sources
from kiloml.deploy.stream_verify import run_stream, simulate_stream
from kiloml.deploy.targets import TARGETS, Build
from kiloml.deploy.verify import run_model, verify_export
from kiloml.ir import quantize_input, quantize_model, simulate
from kiloml.models import build_model
from kiloml.nn.classifier import ModelConfig
from kiloml.nn.sharnn import ShaRNNConfig

STEPS, FEATURES, BRICK, CLASSES = 12, 3, 4, 3
#: (lower cell, upper cell, readout, bits), the targets and build variants each runs on.
CASES = [(("gru", "fastrnn", "mean", 16), (("host", "sanitize"), ("cortex-m4", "fast"),
                                           ("cortex-m3", "fast"))),
         (("fastgrnn", "fastgrnn", "last", 8), (("host", "fast"), ("cortex-m4", "fast")))]


def _export(folder: Path, cell: str, upper: str, readout: str, bits: int):
    torch.manual_seed(0)
    model = build_model(ShaRNNConfig(kind="sharnn", input_size=FEATURES, num_classes=CLASSES,
                                     brick_size=BRICK, cell=cell, upper_cell=upper,
                                     hidden_size=5, upper_hidden_size=6, readout=readout))
    graph = quantize_model(model.eval(), np.random.default_rng(0).normal(
        size=(32, STEPS, FEATURES)), bits)
    generated = generate_model(graph, "a small ShaRNN")
    files = write_sources(generated, folder)
    return graph, generated, [folder / "model.c", *(folder / f for f in c_sources(files))]


def _build(target: str, variant: str, sources: list[Path], folder: Path) -> Build:
    if TARGETS[target].missing():
        pytest.skip(f"{target} toolchain not installed")
    return Build(TARGETS[target], sources, [sources[0].parent], folder / f"build-{target}",
                 variant).compile()


@pytest.mark.parametrize("case, builds", CASES)
def test_c_streams_equal_the_streaming_spec(case, builds, tmp_path):
    graph, generated, sources = _export(tmp_path / "src", *case)
    rng = np.random.default_rng(1)
    lengths = (41, 29, STEPS, BRICK - 1)  # several windows, one window, less than a brick
    streams = [quantize_input(graph, 3 * rng.normal(size=(1, n, FEATURES)))[0]
               for n in lengths]
    expected = simulate_stream(graph, streams)
    per_stream = [sum(1 for d in expected if d[0] == s) for s in range(len(lengths))]
    assert per_stream == [8, 5, 1, 0]  # one decision per brick once a window is full
    header = (tmp_path / "src" / "model.h").read_text()
    assert f"#define KILOML_STREAM_STATE_BYTES {generated.stream_state_bytes}" in header
    assert generated.stream_state_bytes == (generated.scratch_bytes + 12 + 2 * BRICK * FEATURES
                                            + 2 * (STEPS // BRICK) * 5 + 2)  # padded to 4
    for target, variant in builds:
        build = _build(target, variant, sources, tmp_path)
        got, _ = run_stream(build, streams, CLASSES, poison=0xA5)
        assert got == expected, f"{target} {variant}"


def test_one_full_window_equals_kiloml_predict_on_it(tmp_path):
    graph, _, sources = _export(tmp_path / "src", "gru", "fastrnn", "last", 16)
    build = _build("host", "fast", sources, tmp_path)
    window = quantize_input(graph, 3 * np.random.default_rng(2).normal(size=(1, STEPS,
                                                                            FEATURES)))
    (decision,), _ = run_stream(build, [window[0]], CLASSES)
    classes, logits, _ = run_model(build, window, CLASSES)
    assert decision[:3] == (0, STEPS - 1, int(classes[0]))
    assert np.array_equal(decision[3], logits[0])
    assert np.array_equal(logits, simulate(graph, window))


def test_models_without_bricks_have_no_streaming_api():
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="fastgrnn", input_size=FEATURES,
                                    num_classes=CLASSES, hidden_size=4))
    graph = quantize_model(model.eval(), np.random.default_rng(0).normal(
        size=(8, STEPS, FEATURES)), 16)
    generated = generate_model(graph, "a FastGRNN")
    assert "kiloml_stream_push" not in generated.header + generated.source
    assert generated.stream_state_bytes is None


def test_kiloml_verify_checks_the_stream_of_a_sharnn_export(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    torch.manual_seed(0)
    config = ShaRNNConfig(kind="sharnn", input_size=FEATURES, num_classes=CLASSES,
                          brick_size=BRICK, hidden_size=5, upper_hidden_size=6)
    runs.save_run_config(run_dir, config, {"dataset": "synthetic"}, {})
    runs.save_weights(build_model(config), run_dir / runs.WEIGHTS_FILE)
    rng = np.random.default_rng(3)
    export_run(run_dir, tmp_path / "export", bits=8,
               X_calib=rng.normal(size=(16, STEPS, FEATURES)).astype(np.float32),
               X_test=rng.normal(size=(6, STEPS, FEATURES)).astype(np.float32),
               y_test=rng.integers(0, CLASSES, size=6))
    entry = verify_export(tmp_path / "export", targets=("host",))["targets"]["host"]
    # 4 windows of 3 bricks: a decision at every brick from the third on
    assert (entry["stream_decisions"], entry["stream_exact_match"]) == (10, 1.0)
