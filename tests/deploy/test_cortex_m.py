"""The C code on emulated Cortex-M4 and Cortex-M3 computes exactly what the simulator does."""

import json

import numpy as np
import pytest

from kiloml.deploy import verify
from kiloml.deploy.verify import run_cortex_m, verify_export
from kiloml.quantize.serialize import load_quantized
from kiloml.quantize.simulator import simulate_batch

from .deploy_helpers import make_export


@pytest.mark.parametrize("variant", ["fastgrnn-int16", "fastgrnn-lowrank-mean-int8",
                                     "fastrnn-int16", "fastgrnn-stack4-int8"])
def test_cortex_m_output_equals_simulator(exports, variant, require_cortex_m):
    out = exports[variant]
    report = verify_export(out, targets=("cortex-m4", "cortex-m3"))
    info = json.loads((out / "export.json").read_text())
    for target in ("cortex-m4", "cortex-m3"):
        entry = report["targets"][target]
        assert entry["status"] == "ok"
        assert entry["inputs"] == 40 and entry["exact_match"] == 1.0
        assert entry["accuracy"] == report["simulated_accuracy"]
        assert entry["flash_bytes"] > info["weight_flash_bytes"]
        assert entry["stack_bytes_measured"] <= entry["stack_bytes"]
        assert entry["ram_bytes"] == (info["scratch_ram_bytes"] + 4 * info["num_classes"]
                                      + entry["stack_bytes"])
        assert entry["instructions_per_inference"] is not None, entry.get("instructions_note")
        assert entry["instructions_per_inference"] > entry["macs_per_inference"]
    saved = json.loads((out / "verify.json").read_text())
    assert saved["targets"]["cortex-m4"]["exact_match"] == 1.0


@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m3"])
def test_cortex_m_is_exact_on_saturating_inputs(exports, target, require_cortex_m, tmp_path):
    out = exports["fastgrnn-relu-lowrank-int16"]
    q = load_quantized(out / "quantized_model.npz")
    shape = (q.steps, q.input_size)
    rng = np.random.default_rng(0)
    inputs = np.concatenate([
        np.stack([np.full(shape, -32768), np.full(shape, 32767)]),
        rng.integers(-32768, 32768, size=(6, *shape))]).astype(np.int16)
    info = json.loads((out / "export.json").read_text())
    logits, _ = run_cortex_m(out, tmp_path / target, target, q, inputs, info)
    assert np.array_equal(logits, simulate_batch(q, inputs))


def test_cortex_m_is_exact_with_uint16_column_indices(tmp_path, require_cortex_m):
    out = make_export(tmp_path, bits=8, hidden_size=300, keep=0.02, steps=4)
    report = verify_export(out, targets=("cortex-m3",))
    assert report["targets"]["cortex-m3"]["exact_match"] == 1.0


def test_without_instruction_counter_outputs_are_still_checked(exports, monkeypatch, tmp_path,
                                                                require_cortex_m):
    broken = tmp_path / "not_a_plugin.so"
    broken.write_text("")
    monkeypatch.setattr(verify, "build_instruction_counter", lambda build_dir: broken)
    report = verify.verify_export(exports["fastrnn-int16"], targets=("cortex-m3",))
    entry = report["targets"]["cortex-m3"]
    assert entry["exact_match"] == 1.0
    assert entry["instructions_per_inference"] is None
    assert entry["instructions_note"].startswith("instruction counting unavailable")


@pytest.mark.parametrize("settings", [
    dict(input_size=1, hidden_size=3, u_rank=2),  # W, U1, U2 hold fewer than 8 weights
    dict(input_size=4, hidden_size=9, w_rank=2, u_rank=3),  # W1 2x4 with int16 output
    dict(input_size=5, hidden_size=4, u_rank=4),
    dict(input_size=7, hidden_size=12, u_rank=6),
    dict(input_size=8, hidden_size=20, w_rank=1, u_rank=8),  # W2 20x1, U2 20x8
], ids=["under-8-weights", "rank-2-of-4", "5-and-4-columns", "7-and-6-columns",
        "1-and-8-columns"])
def test_int8_dense_kernels_are_exact_on_every_target(tmp_path, settings, require_cortex_m):
    """Dense int8 matrices of at most 8 columns take the narrow kernel (8 weights per row read
    at once, the last rows in a plain loop), wider ones the interleaved kernel (groups of four
    columns, then a tail: U1 and the head here have 9-20 columns). Every width, and matrices
    smaller than one read, give the simulator's integers on the host, with the DSP extension
    (M4) and without (M3)."""
    out = make_export(tmp_path, bits=8, keep=1.0, **settings)
    storage = json.loads((out / "export.json").read_text())["storage"]
    assert all(entry["format"] == "dense" for entry in storage.values())
    report = verify_export(out, targets=("host", "cortex-m4", "cortex-m3"))
    for target, entry in report["targets"].items():
        assert entry["status"] == "ok" and entry["exact_match"] == 1.0, target
