import argparse
import dataclasses
import json

import numpy as np
import pytest

from kiloml.deploy import targets, verify
from kiloml.deploy.commands import (
    add_export_arguments,
    add_verify_arguments,
    run_export,
    run_verify,
)
from kiloml.errors import KilomlError

from .deploy_helpers import make_run, synthetic_data


def _parse(add_arguments, argv):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_export_then_verify_from_the_command_line(tmp_path, capsys, require_gcc):
    run_dir = make_run(tmp_path / "run", kind="fastrnn", readout="mean")
    X_train, _ = synthetic_data(32, seed=1)
    X_test, y_test = synthetic_data(12, seed=2)
    np.savez(tmp_path / "data.npz", X_train=X_train, X_test=X_test, y_test=y_test)
    out = tmp_path / "out"
    args = _parse(add_export_arguments, [str(run_dir), "--out", str(out), "--bits", "8",
                                         "--data", str(tmp_path / "data.npz")])
    assert run_export(args) == 0
    assert "exported fastrnn (int8 weights)" in capsys.readouterr().out
    assert run_verify(_parse(add_verify_arguments, [str(out), "--targets", "host"])) == 0
    report = json.loads((out / "verify.json").read_text())
    assert list(report["targets"]) == ["host"]
    assert report["targets"]["host"]["exact_match"] == 1.0 and report["inputs"] == 12


def test_verify_of_a_directory_without_export_fails(tmp_path):
    with pytest.raises(KilomlError, match="not an export directory"):
        run_verify(_parse(add_verify_arguments, [str(tmp_path), "--targets", "host"]))


def test_verify_rejects_unknown_targets(exports):
    args = _parse(add_verify_arguments, [str(exports["fastrnn-int16"]), "--targets", "riscv"])
    with pytest.raises(KilomlError, match="unknown target"):
        run_verify(args)


def test_missing_cortex_m_toolchain_is_reported_and_host_still_runs(exports, monkeypatch,
                                                                     require_gcc):
    for name in ("cortex-m4", "cortex-m3"):
        absent = dataclasses.replace(targets.TARGETS[name], tools=("qemu-system-nowhere",))
        monkeypatch.setitem(targets.TARGETS, name, absent)
    report = verify.verify_export(exports["fastrnn-int16"])
    assert report["targets"]["host"]["exact_match"] == 1.0
    for target in ("cortex-m4", "cortex-m3"):
        entry = report["targets"][target]
        assert entry["status"] == "skipped"
        assert "apt-get install -y gcc-arm-none-eabi" in entry["reason"]


def test_export_with_incomplete_data_file_fails(tmp_path):
    run_dir = make_run(tmp_path / "run")
    np.savez(tmp_path / "data.npz", X_test=np.zeros((2, 4, 6)))
    args = _parse(add_export_arguments, [str(run_dir), "--out", str(tmp_path / "out"),
                                         "--data", str(tmp_path / "data.npz")])
    with pytest.raises(KilomlError, match="y_test"):
        run_export(args)
