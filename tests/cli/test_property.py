"""Property: whatever ``.npz`` contents and training flags a user gives, ``kiloml train`` exits 0
with a finite model or prints one ``error:`` line; never a traceback, and never a file outside
its output directory touched.

The suite runs a fixed set of 40 examples; ``KILOML_PROPERTY_EXAMPLES=400`` explores that many
new random ones (about 3 minutes on 2 cores).
"""

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file

from kiloml.cli import main

#: What may be wrong with a generated .npz (most examples get none, some one or two).
DATA_FAULTS = ["no steps", "no features", "one sequence", "2-D features", "4-D features",
               "complex", "bool", "NaN", "inf", "1e30", "1e39", "label out of range",
               "NaN label", "fractional label", "label 40000", "one label too many",
               "missing array", "class names", "validation split", "text features"]
#: Training options: valid values first (repeated to be drawn more often), then invalid ones.
OPTIONS = {
    "--model": ["fastgrnn", "fastgrnn", "fastrnn", "gru", "lstm", "sharnn", "emi-fastgrnn",
                "cascade"],
    "--noise-class": ["0"],
    "--brick-size": ["1", "2", "4"],
    "--instance-width": ["1", "3", "9"],
    "--hidden-size": ["2", "3"],
    "--u-rank": ["full", "1", "2", "9"],
    "--sparsity-w": ["1", "0.5", "0.5", "1e-9", "0"],
    "--frame-stack": ["1", "2", "3"],
    "--readout": ["last", "mean"],
    "--lr": ["0.01", "0.01", "1", "1e30", "nan", "inf", "-1"],
    "--batch-size": ["1", "4"],
    "--augment-noise": ["0", "0.1", "0.1", "nan"],
    "--seed": ["0", "4294967295", "4294967296", "-1"],
}


def _faults(draw, choices: list[str]) -> set[str]:
    count = draw(st.sampled_from([0, 0, 0, 0, 1, 1, 2]))
    return set(draw(st.lists(st.sampled_from(choices), min_size=count, max_size=count)))


@st.composite
def npz_contents(draw) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` for ``--dataset``, with the drawn faults."""
    faults = _faults(draw, DATA_FAULTS)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    steps = 0 if "no steps" in faults else draw(st.integers(1, 6))
    features = 0 if "no features" in faults else draw(st.integers(1, 3))
    classes = draw(st.integers(2, 3))

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.permutation(np.arange(n) % classes)
        x = rng.normal(size=(n, steps, features)) + y[:, None, None]
        if "2-D features" in faults:
            x = x.reshape(n, -1)
        if "4-D features" in faults:
            x = x[..., None]
        for value in ("NaN", "inf", "1e30", "1e39"):
            if value in faults and x.size:
                x.flat[rng.integers(x.size)] = float(value)
        for fault, dtype in (("complex", np.complex64), ("bool", np.bool_), ("text", "<U3")):
            if fault in faults or f"{fault} features" in faults:
                x = x.astype(dtype)
        if x.dtype == np.float64:
            x = x.astype(np.float32) if np.all(np.abs(x[np.isfinite(x)]) < 1e38) else x
        y = y.astype(np.float64) if {"NaN label", "fractional label"} & faults else y
        if len(y):
            y[0] = {"label out of range": -1, "NaN label": np.nan, "fractional label": 0.5,
                    "label 40000": 40000}.get(next(iter(faults & {
                        "label out of range", "NaN label", "fractional label",
                        "label 40000"}), None), y[0])
        if "one label too many" in faults:
            y = np.append(y, 0)
        return x, y

    n_train = 1 if "one sequence" in faults else draw(st.integers(6, 12))
    arrays = dict(zip(("X_train", "y_train"), split(n_train), strict=True))
    arrays.update(zip(("X_test", "y_test"), split(draw(st.integers(1, 5))), strict=True))
    if "validation split" in faults:
        arrays.update(zip(("X_val", "y_val"), split(draw(st.integers(1, 4))), strict=True))
    if "class names" in faults:
        arrays["class_names"] = np.array(["[bold]a", "b$", "c"][:draw(st.integers(1, 3))])
    if "missing array" in faults:
        del arrays[draw(st.sampled_from(sorted(arrays)))]
    return arrays


@st.composite
def train_flags(draw) -> list[str]:
    """Training options, each given with probability 1/4."""
    flags = ["--epochs", draw(st.sampled_from(["3", "3", "1"]))]
    for option, values in OPTIONS.items():
        if draw(st.integers(0, 3)) == 3:
            flags += [option, draw(st.sampled_from(values))]
    if draw(st.integers(0, 4)) == 4:
        flags.append("--overwrite")
    return flags


def _snapshot(root: Path, skip: Path) -> dict[str, tuple]:
    """Every path under ``root`` except ``skip``'s with its size, contents' hash and mtime."""
    return {p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns,
                                             hash(p.read_bytes()) if p.is_file() else None)
            for p in root.rglob("*") if skip not in (p, *p.parents)}


def _run(argv: list[str], cwd: Path) -> tuple[int, str]:
    err = io.StringIO()
    here = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # argument errors
                code = exc.code
    finally:
        os.chdir(here)
    return code, err.getvalue()


EXAMPLES = int(os.environ.get("KILOML_PROPERTY_EXAMPLES", 0))


@settings(max_examples=EXAMPLES or 40, deadline=None, derandomize=not EXAMPLES, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(arrays=npz_contents(), flags=train_flags(),
       name=st.sampled_from(["d.npz", "[red]d.npz", "d$x.npz"]),
       occupied=st.sampled_from([False, False, False, True]))
def test_train_exits_with_a_finite_model_or_one_error_line(arrays, flags, name, occupied):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with np.errstate(all="ignore"):
            np.savez(root / name, **arrays)
        out = root / "out"
        if occupied:  # the user's folder: must survive whatever the flags say
            out.mkdir()
            (out / "notes.txt").write_text("the user's")
        before = _snapshot(root, out)
        code, err = _run(["train", "--dataset", name, "--out", "out", *flags], root)
        assert "Traceback" not in err
        event(f"exit {code}: {err.strip()[:60]}")  # --hypothesis-show-statistics lists them
        assert _snapshot(root, out) == before
        if occupied:
            assert code != 0 and (out / "notes.txt").read_text() == "the user's"
        if code == 0:
            weights = load_file(str(out / "model.safetensors"))
            assert all(torch.isfinite(t).all() for t in weights.values())
            metrics = json.loads((out / "metrics.json").read_text())
            assert 0.0 <= metrics["test_accuracy"] <= 1.0
        else:
            assert code in (1, 2)
            lines = err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), err
