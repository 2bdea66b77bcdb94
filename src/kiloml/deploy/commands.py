"""Command-line layer of ``kiloml export`` and ``kiloml verify`` (argparse), for ``kiloml.cli``.

``kiloml export RUN --out DIR [--bits 8|16] [--target c|arduino] [--data FILE.npz]``
``kiloml verify DIR [--targets host,cortex-m4,cortex-m3]``

Export needs calibration and test data: ``--data`` names an ``.npz`` with ``X_train`` (or
``X_calib``), ``X_test`` and ``y_test``; without it, the run's dataset is loaded with
:func:`kiloml.data.load_dataset` (train split → calibration, test split → stored for verify).
Verify uses what export stored in ``DIR``. For a run trained on audio (``data.sample_rate``) of
a dataset :mod:`kiloml.deploy.pcm_clips` can read, export also stores the raw PCM of the first
:data:`PCM_TEST_CLIPS` test clips (``test_pcm.npz``) for checking ``kiloml_predict_pcm``.
"""

import argparse
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from kiloml.deploy.export import TARGETS as EXPORT_TARGETS
from kiloml.deploy.export import export_run
from kiloml.deploy.verify import TARGETS as VERIFY_TARGETS
from kiloml.deploy.verify import verify_export
from kiloml.errors import KilomlError
from kiloml.runs import read_run_config

#: Training sequences used for calibration at most (the first ones, in split order).
CALIBRATION_SAMPLES = 512
#: Raw test clips whose PCM an audio export stores (the first ones, in split order).
PCM_TEST_CLIPS = 16


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="run directory written by kiloml train")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--bits", type=int, choices=(8, 16), default=16,
                        help="weight width (activations are always int16); default 16")
    parser.add_argument("--target", choices=EXPORT_TARGETS, default="c",
                        help="c: sources and Makefile; arduino: also an Arduino library zip")
    parser.add_argument("--name", default="kiloml_model",
                        help="library name (Arduino target); default kiloml_model")
    parser.add_argument("--data", type=Path, default=None,
                        help=".npz with X_train (or X_calib), X_test, y_test; default: the run's "
                             "dataset")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="override where the run's dataset is loaded from")


def add_verify_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", type=Path, help="directory written by kiloml export")
    parser.add_argument("--targets", default=",".join(VERIFY_TARGETS),
                        help=f"comma-separated subset of {','.join(VERIFY_TARGETS)} "
                             "(default: all)")


def load_export_data(run_dir: Path, data_file: Path | None, data_dir: Path | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X_calib, X_test, y_test)`` from ``data_file`` or from the run's dataset (its train
    split's first :data:`CALIBRATION_SAMPLES` sequences calibrate)."""
    if data_file is not None:
        try:
            with np.load(data_file) as data:
                calib_key = "X_calib" if "X_calib" in data else "X_train"
                return data[calib_key][:CALIBRATION_SAMPLES], data["X_test"], data["y_test"]
        except FileNotFoundError:
            raise KilomlError(f"{data_file}: file not found") from None
        except KeyError as e:
            raise KilomlError(f"{data_file}: needs arrays X_train (or X_calib), X_test and "
                              f"y_test; missing {e}") from None
    data_config = read_run_config(run_dir).get("data", {})
    if not data_config.get("dataset"):
        raise KilomlError(f"{run_dir}: config.json names no dataset; pass --data FILE.npz")
    from kiloml.data import load_run_dataset

    splits = load_run_dataset(data_config, data_dir)
    return splits.train.x[:CALIBRATION_SAMPLES], splits.test.x, splits.test.y


def load_export_pcm(run_dir: Path, data_file: Path | None, data_dir: Path | None = None
                    ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(pcm [N, samples] int16, labels [N])`` of the first :data:`PCM_TEST_CLIPS` test clips
    of an audio run's dataset, or ``(None, None)`` (with ``--data``, for non-audio runs and for
    datasets without a raw PCM reader)."""
    from kiloml.deploy.pcm_clips import PCM_DATASETS, load_test_pcm

    data_config = read_run_config(run_dir).get("data", {})
    if (data_file is not None or not data_config.get("sample_rate")
            or data_config.get("dataset") not in PCM_DATASETS):
        return None, None
    pcm, labels, _ = load_test_pcm(data_config["dataset"], data_dir or data_config.get("data_dir"),
                                   limit=PCM_TEST_CLIPS,
                                   skip_bad_files=data_config.get("skip_bad_files", False))
    return pcm, labels


def run_export(args: argparse.Namespace) -> int:
    """``kiloml export``: write the C sources; prints a summary, returns the exit status."""
    X_calib, X_test, y_test = load_export_data(args.run, args.data, args.data_dir)
    pcm_test, pcm_labels = load_export_pcm(args.run, args.data, args.data_dir)
    info = export_run(args.run, args.out, bits=args.bits, target=args.target, X_calib=X_calib,
                      X_test=X_test, y_test=y_test, name=args.name, pcm_test=pcm_test,
                      pcm_labels=pcm_labels)
    console = Console()
    console.print(f"exported {info['model_kind']} (int{info['bits']} weights) to {args.out}: "
                  f"{info['weight_flash_bytes']} B weights, {info['scratch_ram_bytes']} B "
                  f"scratch, {info['macs_per_inference']} MACs per inference")
    if "simulated_accuracy" in info:
        console.print(f"integer accuracy {info['simulated_accuracy']:.4f}, float "
                      f"{info['float_accuracy']:.4f} on {info['test_count']} test inputs")
    if "pcm" in info:
        pcm = info["pcm"]
        console.print(f"raw PCM entry point kiloml_predict_pcm: {pcm['samples']} samples at "
                      f"{pcm['sample_rate']} Hz, {pcm['ram_bytes']} B RAM"
                      + (f", {pcm['test_count']} test clips stored" if "test_count" in pcm
                         else ""))
    if "arduino_zip" in info:
        console.print(f"Arduino library: {Path(args.out) / info['arduino_zip']}")
    return 0


def _format(value, pattern: str = "{}") -> str:
    return "-" if value is None else pattern.format(value)


def run_verify(args: argparse.Namespace) -> int:
    """``kiloml verify``: run every target, print a table; exit status 1 unless every target
    that ran matched the simulator on every input."""
    targets = tuple(t.strip() for t in args.targets.split(",") if t.strip())
    report = verify_export(args.dir, targets=targets)
    table = Table(title=f"kiloml verify: {report['inputs']} inputs, int{report['bits']} weights")
    for column in ("target", "exact", "acc.", "float acc.", "flash B", "RAM B", "instr.",
                   "instr./MAC"):
        table.add_column(column, justify="left" if column == "target" else "right")
    failed = False
    console = Console()
    if console.width < 110:
        console = Console(width=110)
    for target, entry in report["targets"].items():
        if entry["status"] != "ok":
            table.add_row(target, "skipped", *["-"] * 6)
            console.print(f"[yellow]{target} skipped:[/yellow] {entry['reason']}")
            continue
        failed |= entry["exact_match"] != 1.0
        table.add_row(target, f"{entry['exact_match']:.4f}", _format(entry["accuracy"], "{:.4f}"),
                      _format(entry["float_accuracy"], "{:.4f}"), _format(entry["flash_bytes"]),
                      _format(entry["ram_bytes"]),
                      _format(entry.get("instructions_per_inference"), "{:,.0f}"),
                      _format(entry.get("instructions_per_mac"), "{:.1f}"))
        if entry.get("instructions_note"):
            console.print(f"[yellow]{target}:[/yellow] {entry['instructions_note']}")
    console.print(table)
    return 1 if failed else 0
