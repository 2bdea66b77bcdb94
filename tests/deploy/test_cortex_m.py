"""``kiloml verify`` on emulated Cortex-M4 and Cortex-M3: the report of an export. Every kernel
and storage variant is checked against the simulator on both cores by the goldens
(``tests/golden``) and the op tests (``tests/ops``)."""

import json

import pytest

from kiloml.deploy import targets
from kiloml.deploy.verify import verify_export


def test_verify_reports_exactness_and_costs_on_cortex_m(exports, require_cortex_m):
    out = exports["fastgrnn-lowrank-mean-int8"]
    report = verify_export(out, targets=("cortex-m4", "cortex-m3"))
    info = json.loads((out / "export.json").read_text())
    for target in ("cortex-m4", "cortex-m3"):
        entry = report["targets"][target]
        assert entry["status"] == "ok"
        assert entry["inputs"] == 40 and entry["exact_match"] == 1.0
        assert entry["accuracy"] == report["simulated_accuracy"]
        assert entry["flash_bytes"] > info["weight_flash_bytes"]
        assert 0 < entry["stack_bytes_measured"] <= entry["stack_bytes"]
        assert entry["ram_bytes"] == (info["scratch_ram_bytes"] + info["output_bytes"]
                                      + entry["stack_bytes"])
        assert entry["instructions_per_inference"] is not None, entry.get("instructions_note")
        assert entry["instructions_per_inference"] > entry["macs_per_inference"]
    m4 = report["targets"]["cortex-m4"]
    header = (out / "model.h").read_text()
    assert f"#define KILOML_RAM_BYTES {m4['ram_bytes_stated']}\n" in header
    assert f"#define KILOML_STACK_BYTES {m4['stack_bytes']}\n" in header
    assert abs(m4["ram_bytes_measured"] - m4["ram_bytes_stated"]) <= 0.05 * m4["ram_bytes_stated"]
    saved = json.loads((out / "verify.json").read_text())
    assert saved["targets"]["cortex-m4"]["exact_match"] == 1.0


def test_without_instruction_counter_outputs_are_still_checked(exports, monkeypatch, tmp_path,
                                                                require_cortex_m):
    broken = tmp_path / "not_a_plugin.so"
    broken.write_text("")
    monkeypatch.setattr(targets, "build_instruction_counter", lambda build_dir: broken)
    report = verify_export(exports["fastrnn-int16"], targets=("cortex-m3",))
    entry = report["targets"]["cortex-m3"]
    assert entry["exact_match"] == 1.0
    assert entry["instructions_per_inference"] is None
    assert entry["instructions_note"].startswith("instruction counting unavailable")


@pytest.mark.parametrize("variant", ["gru-int16", "lstm-mean-int8"])
def test_gru_and_lstm_exports_are_exact_on_cortex_m(exports, variant, require_cortex_m):
    """torch.nn.GRU/LSTM runs (random weights, half of every matrix pruned) exported and
    verified end to end: every output integer equals the simulator's on both cores."""
    report = verify_export(exports[variant], targets=("cortex-m4", "cortex-m3"))
    for target in ("cortex-m4", "cortex-m3"):
        entry = report["targets"][target]
        assert entry["status"] == "ok" and entry["inputs"] == 40
        assert entry["exact_match"] == 1.0
        assert entry["instructions_per_inference"] > entry["macs_per_inference"]
