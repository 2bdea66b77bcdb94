"""EMI-FastGRNN's streaming form with early exit: the integer spec reads an instance step by
step and stops exactly at the first step whose logits pass the exit margin (a constructed
threshold); its last step equals ``kiloml_predict``; the C (``kiloml_stream_push``) equals the
spec on whole streams, bit for bit, on the host, Cortex-M4/M3 and the AVR; export and verify work
on an EMI run."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from kiloml import runs
from kiloml.deploy.codegen import c_sources, generate_model
from kiloml.deploy.export import export_run, write_sources
from kiloml.deploy.stream_verify import run_stream, simulate_stream
from kiloml.deploy.targets import TARGETS, Build
from kiloml.deploy.verify import verify_export
from kiloml.errors import KilomlError
from kiloml.ir import quantize_input, quantize_model, simulate
from kiloml.ir.early_exit import (
    EMIStream,
    early_exit_settings,
    exit_margin,
    instances,
    read_instances,
    step_logits,
)
from kiloml.models import build_model
from kiloml.nn.emi import EMIConfig, exit_steps

STEPS, FEATURES, WIDTH, STRIDE, CLASSES = 14, 3, 6, 4, 3  # 3 instances per window


def _graph(bits: int = 16, threshold: float = 0.6):
    torch.manual_seed(0)
    config = EMIConfig(kind="emi-fastgrnn", input_size=FEATURES, num_classes=CLASSES,
                       hidden_size=5, instance_width=WIDTH, instance_stride=STRIDE,
                       exit_threshold=threshold)
    model = build_model(config)
    with torch.no_grad():
        model.head.weight.mul_(8.0)  # logits far enough apart for early exits
    calib = np.random.default_rng(0).normal(size=(24, STEPS, FEATURES))
    return model, quantize_model(model.eval(), calib, bits)


def _sources(graph, folder: Path) -> list[Path]:
    files = write_sources(generate_model(graph, "a small EMI-FastGRNN"), folder)
    return [folder / "model.c", *(folder / f for f in c_sources(files))]


def _build(target: str, variant: str, sources: list[Path], folder: Path) -> Build:
    if TARGETS[target].missing():
        pytest.skip(f"{target} toolchain not installed")
    return Build(TARGETS[target], sources, [sources[0].parent], folder / f"build-{target}",
                 variant).compile()


def test_the_graph_reads_one_instance_and_its_last_step_is_kiloml_predict():
    _, graph = _graph()
    assert graph.values[graph.input].shape == (WIDTH, FEATURES)
    assert graph.meta["early_exit"] == {"width": WIDTH, "stride": STRIDE, "instances": 3,
                                        "threshold": 0.6, "noise": CLASSES}
    x = quantize_input(graph, np.random.default_rng(1).normal(size=(9, WIDTH, FEATURES)))
    assert np.array_equal(step_logits(graph, x)[:, -1], simulate(graph, x))
    # read one step at a time, each instance stopping at its exit: as the test on every step
    classes, steps, logits = read_instances(graph, x)
    every = step_logits(graph, x)
    expected = exit_steps(every, early_exit_settings(graph)["margin"])
    assert np.array_equal(classes, expected[0]) and np.array_equal(steps, expected[1])
    assert np.array_equal(logits, every[np.arange(len(x)), steps - 1]) and steps.min() < WIDTH
    assert instances(np.arange(14)[None, :, None], WIDTH, STRIDE)[:, :, 0].tolist() == [
        list(range(0, 6)), list(range(4, 10)), list(range(8, 14))]


def test_early_exit_stops_exactly_at_the_threshold_crossing():
    _, graph = _graph()
    frac = graph.values[graph.output].frac_bits
    x = quantize_input(graph, 2 * np.random.default_rng(4).normal(size=(40, WIDTH, FEATURES)))
    logits = step_logits(graph, x)
    top2 = np.sort(logits, axis=2)[..., -2:]
    gaps = top2[..., 1] - top2[..., 0]  # [N, W]
    # an instance whose margin first reaches a new maximum at step k > 1
    n, k = next((n, k) for n in range(len(x)) for k in range(2, WIDTH - 1)
                if gaps[n, k] > gaps[n, :k].max() + 1)
    for margin, stop in ((gaps[n, k], k + 1), (gaps[n, :k].max() + 1, k + 1),
                         (gaps[n, :k].max(), int(np.argmax(gaps[n] >= gaps[n, :k].max())) + 1)):
        # the threshold whose margin is exactly `margin` in the logits' format
        p = 1 / (1 + math.exp(-(margin - 0.5) / 2 ** frac))
        assert exit_margin(p, frac) == margin
        graph.meta["early_exit"]["threshold"] = p
        classes, steps, exit_logits = read_instances(graph, x[n:n + 1])
        assert steps[0] == stop
        assert np.array_equal(exit_logits[0], logits[n, stop - 1])
        assert classes[0] == np.argmax(logits[n, stop - 1])
    assert exit_margin(1.0, frac) > 2 ** 33 and exit_margin(0.5, frac) == 0


def test_the_c_stops_at_the_same_step(tmp_path):
    """A stream of one instance (one window: 3 instances, the window's class from all) with
    the threshold of the crossing at step k: the C's logits are the step-k logits, not the
    last step's."""
    _, graph = _graph()
    frac = graph.values[graph.output].frac_bits
    rng = np.random.default_rng(4)
    x = quantize_input(graph, 2 * rng.normal(size=(40, WIDTH, FEATURES)))
    logits = step_logits(graph, x)
    top2 = np.sort(logits, axis=2)[..., -2:]
    gaps = top2[..., 1] - top2[..., 0]
    n, k = next((n, k) for n in range(len(x)) for k in range(2, WIDTH - 1)
                if gaps[n, k] > gaps[n, :k].max() + 1)
    graph.meta["early_exit"]["threshold"] = 1 / (1 + math.exp(-(gaps[n, k] - 0.5)
                                                                / 2 ** frac))
    other = x[(n + 1) % len(x), :STRIDE]
    stream = np.concatenate([other, other, x[n]])  # the last of 3 instances: x[n]
    spec = EMIStream(graph)
    decisions = [d for d in (spec.push(f) for f in stream) if d is not None]
    assert len(decisions) == 1 and spec.steps[-1] == k + 1
    build = _build("host", "sanitize", _sources(graph, tmp_path / "src"), tmp_path)
    (got,), _ = run_stream(build, [stream], CLASSES + 1, poison=0xA5)
    assert got == simulate_stream(graph, [stream])[0]
    assert np.array_equal(got[3], logits[n, k]) and not np.array_equal(got[3], logits[n, -1])


@pytest.mark.parametrize("target, variant, bits", [
    ("host", "sanitize", 16), ("host", "fast", 8), ("cortex-m4", "fast", 8),
    ("cortex-m3", "fast", 16), ("avr", "fast", 8)])
def test_c_streams_equal_the_streaming_spec(target, variant, bits, tmp_path):
    _, graph = _graph(bits, threshold=0.7)
    rng = np.random.default_rng(5)
    lengths = (45, STEPS, WIDTH - 1)  # several windows, one window, less than an instance
    streams = [quantize_input(graph, 2 * rng.normal(size=(1, n, FEATURES)))[0]
               for n in lengths]
    expected = simulate_stream(graph, streams)
    assert [sum(d[0] == s for d in expected) for s in range(3)] == [8, 1, 0]
    read = EMIStream(graph)
    for frame in streams[0]:
        read.push(frame)
    assert min(read.steps) < WIDTH  # some instances exit early
    build = _build(target, variant, _sources(graph, tmp_path / "src"), tmp_path)
    got, _ = run_stream(build, streams, CLASSES + 1, poison=0xA5)
    assert got == expected


def test_a_frame_of_the_wrong_size_is_one_line():
    _, graph = _graph()
    with pytest.raises(KilomlError, match="a frame must hold 3 values"):
        EMIStream(graph).push(np.zeros(4, dtype=np.int16))
    with pytest.raises(KilomlError, match="int16"):
        EMIStream(graph).push(np.full(3, 40000))


def test_export_and_verify_an_emi_run(tmp_path):
    model, _ = _graph()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    runs.save_run_config(run_dir, model.config, {"dataset": "synthetic"}, {})
    runs.save_weights(model, run_dir / runs.WEIGHTS_FILE)
    rng = np.random.default_rng(3)
    info = export_run(run_dir, tmp_path / "export", bits=8,
                      X_calib=rng.normal(size=(16, STEPS, FEATURES)).astype(np.float32),
                      X_test=rng.normal(size=(5, STEPS, FEATURES)).astype(np.float32),
                      y_test=rng.integers(0, CLASSES, size=5))
    assert info["test_count"] == 15 and info["steps"] == WIDTH  # 3 instances per window
    entry = verify_export(tmp_path / "export", targets=("host",))["targets"]["host"]
    assert entry["exact_match"] == 1.0
    # the first 4 test instances as one stream of 24 frames: instances end at frames 5, 9,
    # ..., 21, a decision from the third on
    assert (entry["stream_decisions"], entry["stream_exact_match"]) == (3, 1.0)
