"""The exported C on the host: exact on every stored test input, in the fast, reference
(``-DKL_REFERENCE``) and sanitized builds, on extreme inputs and at shape extremes."""

import json

import numpy as np
import pytest
import torch

from kiloml.deploy.verify import model_build, run_model, verify_export
from kiloml.ir.serialize import load_graph
from kiloml.ir.simulate import simulate
from kiloml.runs import load_run

from .deploy_helpers import VARIANTS, make_export, synthetic_data


def _extreme_inputs(steps: int, features: int, count: int, seed: int) -> np.ndarray:
    """All-minimum, all-maximum, alternating extremes, then random int16 sequences."""
    rng = np.random.default_rng(seed)
    shape = (steps, features)
    fixed = [np.full(shape, -32768), np.full(shape, 32767), np.zeros(shape),
             np.where(np.indices(shape).sum(0) % 2 == 0, -32768, 32767)]
    randoms = rng.integers(-32768, 32768, size=(count, steps, features))
    return np.concatenate([np.stack(fixed), randoms]).astype(np.int16)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_host_output_equals_simulator_on_every_test_input(exports, variant, require_gcc):
    report = verify_export(exports[variant], targets=("host",))
    host = report["targets"]["host"]
    assert host["status"] == "ok" and host["inputs"] == 40
    assert host["exact_match"] == 1.0
    assert host["accuracy"] == report["simulated_accuracy"]
    assert host["ram_bytes"] > host["stack_bytes"] > 0


@pytest.mark.parametrize("build", ["sanitize", "reference"])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_sanitized_and_reference_builds_are_exact_on_extreme_inputs(exports, variant, build,
                                                                    require_gcc, tmp_path):
    """Any sanitizer report fails the run; -DKL_REFERENCE selects the plain int64 loops."""
    out = exports[variant]
    graph = load_graph(out / "quantized_model.npz")
    inputs = _extreme_inputs(*graph.values["x"].shape, count=40, seed=3)
    built = model_build(out, "host", tmp_path, variant=build)
    returned, logits, _ = run_model(built, inputs, graph.meta["num_classes"])
    assert np.array_equal(logits, simulate(graph, inputs))
    assert np.array_equal(returned, logits.argmax(1))


def test_poisoned_arena_gives_the_same_result(exports, require_gcc, tmp_path):
    out = exports["fastgrnn-relu-lowrank-int16"]
    graph = load_graph(out / "quantized_model.npz")
    inputs = np.load(out / "test_inputs.npz")["inputs"][:10]
    built = model_build(out, "host", tmp_path)
    expected = simulate(graph, inputs)
    for poison in (0x00, 0xA5, 0xFF, 0x7F):
        _, logits, _ = run_model(built, inputs, graph.meta["num_classes"], poison=poison)
        assert np.array_equal(logits, expected), poison


@pytest.mark.parametrize("settings", [
    dict(input_size=1, hidden_size=1, num_classes=2, steps=1),
    dict(input_size=3, hidden_size=4, num_classes=2, steps=2, w_rank=1, u_rank=1,
         readout="mean", bits=8),
    dict(hidden_size=300, keep=0.02, steps=4),  # uint16 column indices
    dict(frame_stack=8, steps=24, w_rank=3, u_rank=4, bits=8),
], ids=["smallest", "rank-one", "wide-int16", "frame-stack-8"])
def test_host_is_exact_at_shape_extremes(tmp_path, settings, require_gcc):
    out = make_export(tmp_path, **settings)
    info = json.loads((out / "export.json").read_text())
    if settings.get("frame_stack"):
        assert (info["steps"], info["input_size"], info["frame_stack"]) == (3, 48, 8)
        assert "#define KILOML_FRAME_STACK 8\n" in (out / "model.h").read_text()
    if settings.get("hidden_size") == 300:
        assert info["storage"]["rnn.U"]["format"] == "csr"
    report = verify_export(out, targets=("host",))
    assert report["targets"]["host"]["exact_match"] == 1.0


def test_verify_with_raw_test_data_and_float_model(exports, require_gcc):
    out = exports["fastgrnn-int16"]
    _, model = load_run(out.parent / "run")
    X_test, y_test = synthetic_data(25, seed=9)
    report = verify_export(out, X_test, y_test, float_model=model, targets=("host",))
    host = report["targets"]["host"]
    assert report["inputs"] == 25 and host["exact_match"] == 1.0
    with torch.no_grad():
        expected = float(np.mean(model(torch.from_numpy(X_test)).argmax(1).numpy() == y_test))
    assert host["float_accuracy"] == expected
