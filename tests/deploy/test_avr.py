"""``kiloml verify --targets avr``: an export runs bit-exact on the simulated Arduino Uno with its
flash, RAM, cycles and milliseconds reported; a model the Uno cannot hold, an op the AVR kernels
do not cover and a missing toolchain are each one line."""

import json
import re

import numpy as np
import pytest
import torch

from kiloml import runs
from kiloml.cli import main
from kiloml.deploy import targets
from kiloml.deploy.export import export_run
from kiloml.deploy.targets import AVR_CLOCK_HZ, AVR_FLASH_BYTES, AVR_RAM_BYTES
from kiloml.deploy.verify import verify_export
from kiloml.models import FAMILIES, build_model

from ..cli.cli_helpers import error_line


def _export(root, kind: str, features: int, bits: int = 8, steps: int = 1, **settings):
    """An export of a seeded random ``kind`` model on ``features`` inputs, 3 classes, with 6
    test inputs."""
    torch.manual_seed(0)
    config = FAMILIES[kind].config(kind=kind, input_size=features, num_classes=3,
                                   **settings).validate()
    model = build_model(config)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, steps, features)).astype(np.float32)
    flat = torch.from_numpy(X.reshape(-1, features))
    model.set_normalization(flat.mean(0), flat.std(0))
    if hasattr(model, "init_from_data"):
        model.init_from_data(X.reshape(40, -1), np.arange(40) % 3, 0)
    (root / "run").mkdir()
    runs.save_run_config(root / "run", config, {"dataset": "synthetic"}, {})
    runs.save_weights(model.eval(), root / "run" / runs.WEIGHTS_FILE)
    export_run(root / "run", root / "export", bits=bits, X_calib=X[:34], X_test=X[34:],
               y_test=np.arange(6) % 3, measure_stack=False)
    return root / "export"


def test_a_protonn_export_verifies_on_the_uno_with_its_budget(tmp_path, capsys, require_avr):
    out = _export(tmp_path, "protonn", 64, projection_dim=8, prototypes=12)
    assert main(["verify", str(out), "--targets", "avr"]) == 0
    assert "avr" in capsys.readouterr().out
    entry = json.loads((out / "verify.json").read_text())["targets"]["avr"]
    assert entry["status"] == "ok" and entry["exact_match"] == 1.0 and entry["inputs"] == 6
    info = json.loads((out / "export.json").read_text())
    # the weights stay in flash: the RAM holds the arena, input, outputs and a few descriptors
    assert entry["static_ram_bytes"] < info["weight_flash_bytes"]
    assert entry["flash_bytes"] > info["weight_flash_bytes"]
    assert entry["flash_bytes"] < entry["image_flash_bytes"] <= AVR_FLASH_BYTES
    assert entry["ram_bytes"] == entry["static_ram_bytes"] + entry["stack_bytes_measured"]
    assert 0 < entry["stack_bytes_measured"] and entry["ram_bytes"] <= AVR_RAM_BYTES
    low, high = entry["cycles_min_max"]
    assert 10_000 < low <= entry["cycles_per_inference"] <= high
    assert entry["ms_per_inference"] == pytest.approx(
        1000 * entry["cycles_per_inference"] / AVR_CLOCK_HZ)


@pytest.mark.parametrize("features, settings, needed", [
    (1100, dict(projection_dim=4, prototypes=4), r"needs \d+ B of RAM \(static data \(arena, "
                                                  r"input, outputs\)\), the ATmega328P has 2048 B"),
    (300, dict(projection_dim=60, prototypes=4), r"its constants alone need 36\d\d\d B of "
                                                 r"flash, the ATmega328P has 32768 B"),
])
def test_a_model_too_big_for_the_uno_fails_with_needed_and_available_bytes(
        features, settings, needed, tmp_path, capsys, require_avr):
    out = _export(tmp_path, "protonn", features, bits=16, **settings)
    assert main(["verify", str(out), "--targets", "avr"]) == 1
    line = error_line(capsys)
    assert line.startswith("error: the model does not fit the Arduino Uno: ")
    assert re.search(needed, line), line


def test_an_op_without_avr_kernels_is_a_one_line_error(tmp_path, capsys):
    out = _export(tmp_path, "dscnn", 3, steps=16, channels=4, blocks=1, kernel_size=3)
    assert main(["verify", str(out), "--targets", "avr"]) == 1
    assert error_line(capsys).startswith(
        "error: the avr target does not run the op(s) conv1d")


def test_a_missing_avr_toolchain_is_skipped_with_the_install_command(tmp_path, monkeypatch):
    out = _export(tmp_path, "protonn", 16, projection_dim=4, prototypes=4)
    monkeypatch.setattr(targets.shutil, "which",
                        lambda tool: None if tool.startswith("avr-") else "/bin/true")
    entry = verify_export(out, targets=("avr",))["targets"]["avr"]
    assert entry["status"] == "skipped"
    assert entry["reason"] == ("avr-gcc, avr-size, avr-nm not found; install with: apt-get "
                               "install -y gcc-avr avr-libc simavr libsimavr-dev libelf-dev "
                               "pkg-config")


@pytest.mark.parametrize("bits", [16, 8])
def test_a_blocked_matrix_runs_bit_exact_on_the_uno(bits, tmp_path, require_avr):
    """The blocked kernels read their weights, block indices and row pointers from program
    memory and widen every product to 32 bits (16-bit int)."""
    torch.manual_seed(0)
    config = FAMILIES["fastgrnn"].config(kind="fastgrnn", input_size=3, num_classes=3,
                                         hidden_size=16).validate()
    model = build_model(config)
    with torch.no_grad():
        u = model.rnn.cell.U
        u.mul_(40.0)  # products of 8-bit weights and 16-bit states overflow a 16-bit int
        keep = torch.rand(u.shape[0], u.shape[1] // 4,
                          generator=torch.Generator().manual_seed(0)) < 0.5
        u.mul_(keep.repeat_interleave(4, 1).float())
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 8, 3)).astype(np.float32)
    flat = torch.from_numpy(X.reshape(-1, 3))
    model.set_normalization(flat.mean(0), flat.std(0))
    (tmp_path / "run").mkdir()
    runs.save_run_config(tmp_path / "run", config, {"dataset": "synthetic"}, {})
    runs.save_weights(model.eval(), tmp_path / "run" / runs.WEIGHTS_FILE)
    info = export_run(tmp_path / "run", tmp_path / "export", bits=bits, X_calib=X[:34],
                      X_test=X[34:], y_test=np.arange(6) % 3, measure_stack=False)
    assert info["storage"]["rnn.U"]["format"] == "blocked"
    entry = verify_export(tmp_path / "export", targets=("avr",))["targets"]["avr"]
    assert entry["status"] == "ok" and entry["exact_match"] == 1.0 and entry["inputs"] == 6


def test_the_smartwatch_fastgrnn_default_size_runs_within_the_unos_ram(tmp_path, require_avr):
    """FastGRNN at kiloml's smartwatch default size (hidden 32, U rank 8, 6 features, 128
    steps), int16 and dense: the whole input window [128, 6] (1,536 B) stays in RAM with the
    arena, the outputs and the deepest stack, within the ATmega328P's 2,048 B."""
    out = _export(tmp_path, "fastgrnn", 6, bits=16, steps=128, hidden_size=32, u_rank=8)
    entry = verify_export(out, targets=("avr",))["targets"]["avr"]
    assert entry["status"] == "ok" and entry["exact_match"] == 1.0 and entry["inputs"] == 6
    window = 128 * 6 * 2
    assert window < entry["static_ram_bytes"] < window + 300  # + arena (220 B) and outputs
    assert entry["ram_bytes"] == entry["static_ram_bytes"] + entry["stack_bytes_measured"]
    assert 100 < entry["stack_bytes_measured"] and entry["ram_bytes"] <= AVR_RAM_BYTES
    # 128 steps of a 32-unit FastGRNN: millions of cycles per window, above a second at 16 MHz
    assert 10_000_000 < entry["cycles_per_inference"]
