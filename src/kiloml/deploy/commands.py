"""Command-line layer of ``kiloml export`` and ``kiloml verify`` (argparse), for ``kiloml.cli``.

``kiloml export RUN --out DIR [--bits 8|16] [--target c|arduino] [--data FILE.npz] [--overwrite]``
``kiloml verify DIR [--targets host,cortex-m4,cortex-m3,avr] [--require TARGETS]``

Export checks everything first (the run's weights are finite, the data is real, finite and
shaped as the model needs, ``DIR`` is new, empty or kiloml's own export), then writes into a
temporary sibling of ``DIR`` and renames it into place (:mod:`kiloml.outputs`): a failed export
leaves ``DIR`` as it was. Verify exits non-zero unless at least one target ran and every target
that ran matched the simulator exactly; ``--require`` makes a skipped target an error.

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
from rich.markup import escape
from rich.table import Table

from kiloml.data.npz import read_npz
from kiloml.data.splits import check_features
from kiloml.deploy.codegen import MODEL_CONFIG_FILE
from kiloml.deploy.export import (
    EXPORT_FILE,
    EXPORT_TARGETS,
    LIBRARY_FILES,
    QUANTIZED_FILE,
    STORAGE_RULES,
    TEST_INPUTS_FILE,
    TEST_PCM_FILE,
    export_run,
)
from kiloml.deploy.verify import BUILD_DIR, DEFAULT_TARGETS, VERIFY_FILE, verify_export
from kiloml.deploy.verify import TARGETS as VERIFY_TARGETS
from kiloml.errors import KilomlError
from kiloml.ir.schedule import SCHEDULES
from kiloml.outputs import (
    OutputKind,
    OutputLock,
    check_output_dir,
    read_marker,
    record_files,
    staged_output_dir,
)
from kiloml.runs import (
    RUN_OUTPUT,
    WEIGHTS_FILE,
    check_finite_weights,
    load_run,
    load_run_data,
    read_run_config,
)

#: Training sequences used for calibration at most (the first ones, in split order).
CALIBRATION_SAMPLES = 512
#: Test images an image model's export stores for kiloml verify (the first ones, in split
#: order): a 96x96 image is 55 KB of int16 input and millions of emulated instructions.
IMAGE_TEST_INPUTS = 8
#: Raw test clips whose PCM an audio export stores (the first ones, in split order).
PCM_TEST_CLIPS = 16
#: An export directory as an output of kiloml (:mod:`kiloml.outputs`); ``verify`` adds its
#: report and its build folder.
EXPORT_OUTPUT = OutputKind(
    "export", EXPORT_FILE,
    (*LIBRARY_FILES, "model.h", "model.c", MODEL_CONFIG_FILE, "main.c", "Makefile", "README.md",
     "test_vectors.h", QUANTIZED_FILE, TEST_INPUTS_FILE, TEST_PCM_FILE, EXPORT_FILE,
     VERIFY_FILE, BUILD_DIR),
    scratch_dirs=(BUILD_DIR,))


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="run directory written by kiloml train")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--bits", type=int, choices=(8, 16), default=16,
                        help="weight width (activations are always int16); default 16; image "
                             "models: int8 weights and activations only, their default")
    parser.add_argument("--target", choices=EXPORT_TARGETS, default="c",
                        help="c: sources and Makefile; arduino: also an Arduino library zip")
    parser.add_argument("--name", default="kiloml_model",
                        help="library name (Arduino target); default kiloml_model")
    parser.add_argument("--data", type=Path, default=None,
                        help=".npz with X_train (or X_calib), X_test, y_test; default: the run's "
                             "dataset")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="override where the run's dataset is loaded from (its files must "
                             "be those the run was trained on)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier export in --out (only the files kiloml wrote "
                             "there; a folder kiloml did not write is never touched)")
    parser.add_argument("--max-ram", type=_bytes, default=None, metavar="BYTES",
                        help="fail, writing nothing, when one inference needs more RAM: the "
                             "arena, the logits and (with arm-none-eabi-gcc) the Cortex-M4 "
                             "stack")
    parser.add_argument("--max-flash", type=_bytes, default=None, metavar="BYTES",
                        help="fail, writing nothing, when the stored constants (weights, "
                             "indices, scales) need more flash")
    parser.add_argument("--storage-by", choices=STORAGE_RULES, default="bytes",
                        help="how each weight matrix is stored (dense, CSR or blocks of 4): "
                             "bytes = the smallest; speed = the fewest Cortex-M4 instructions "
                             "by the kernels' cost model when at least 5%% fewer than the "
                             "smallest format's, else the smallest; export.json "
                             "reports each choice and its predicted instructions "
                             "(default: bytes)")
    parser.add_argument("--schedule", choices=SCHEDULES, default=None,
                        help="image models (int8, --bits 8): how the first stages run. layers: "
                             "whole maps one layer after another; patches (mobilenetv2): "
                             "MCUNetV2-style, the first blocks on tiles with their receptive "
                             "fields recomputed; rnnpool (rnnpool-mobilenetv2): stem and RNNPool "
                             "patch by patch. Within patches/rnnpool the tiling with the smallest "
                             "planned peak RAM is chosen (kiloml info lists them); default: the "
                             "applicable schedule with the smallest planned peak RAM")


def _bytes(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of bytes, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of bytes, got {value}")
    return value


def add_verify_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", type=Path, help="directory written by kiloml export")
    parser.add_argument("--targets", "--target", default=",".join(DEFAULT_TARGETS),
                        help=f"comma-separated subset of {','.join(VERIFY_TARGETS)} "
                             f"(default: {','.join(DEFAULT_TARGETS)}; avr: the Arduino Uno in "
                             "simavr, ProtoNN and Bonsai models); a target whose toolchain is "
                             "missing is skipped")
    parser.add_argument("--require", default="", metavar="TARGETS",
                        help="comma-separated targets that must run: a skipped one is an error "
                             "(e.g. --require cortex-m4,cortex-m3 in CI); they are run even if "
                             "--targets leaves them out")


def _export_arrays(data_file: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X_calib, X_test, y_test)`` from an ``.npz`` given with ``--data``."""
    arrays = read_npz(data_file)
    calib_key = "X_calib" if "X_calib" in arrays else "X_train"
    missing = [k for k in (calib_key, "X_test", "y_test") if k not in arrays]
    if missing:
        raise KilomlError(f"{data_file}: needs arrays X_train (or X_calib), X_test and y_test; "
                          f"missing {missing}")
    X_calib = check_features(arrays[calib_key], f"{data_file}: {calib_key}")
    X_test = check_features(arrays["X_test"], f"{data_file}: X_test")
    y_test = arrays["y_test"]
    if (y_test.ndim != 1 or len(y_test) != len(X_test)
            or not (y_test.dtype.kind in "biu"
                    or (y_test.dtype.kind == "f" and np.all(np.isfinite(y_test))
                        and np.all(y_test == np.round(y_test))))):
        raise KilomlError(f"{data_file}: y_test must hold one integer label per sequence of "
                          f"X_test ({len(X_test)}), got {y_test.dtype} of shape "
                          f"{list(y_test.shape)}")
    return X_calib[:CALIBRATION_SAMPLES], X_test, y_test.astype(np.int64)


def load_export_data(run_dir: Path, data_file: Path | None, data_dir: Path | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X_calib, X_test, y_test)`` from ``data_file`` or from the run's dataset (its train
    split's first :data:`CALIBRATION_SAMPLES` sequences calibrate); the run's dataset must be
    the data it was trained on (its recorded fingerprint)."""
    if data_file is not None:
        return _export_arrays(data_file)
    config = read_run_config(run_dir)
    if not config.get("data", {}).get("dataset"):
        raise KilomlError(f"{run_dir}: config.json names no dataset; pass --data FILE.npz")
    splits = load_run_data(config, data_dir, hint="; pass --data FILE.npz to calibrate and test "
                                                  "on other data")
    if _is_image_run(config):
        return (np.asarray(splits.train.x[:CALIBRATION_SAMPLES]),
                np.asarray(splits.test.x[:IMAGE_TEST_INPUTS]),
                np.asarray(splits.test.y[:IMAGE_TEST_INPUTS]))
    return splits.train.x[:CALIBRATION_SAMPLES], splits.test.x, splits.test.y


def _is_image_run(config: dict) -> bool:
    """Whether the run's model is an image family (its config names an image size)."""
    return {"height", "width", "in_channels"} <= set(config.get("model", {}))


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
    pcm, labels, _ = load_test_pcm(data_config["dataset"],
                                   data_dir or data_config.get("data_dir"),
                                   limit=PCM_TEST_CLIPS,
                                   skip_bad_files=data_config.get("skip_bad_files", False))
    return pcm, labels


def _check_export_data(model, X_calib: np.ndarray, X_test: np.ndarray, where: str) -> None:
    """One-line error unless the calibration and test sequences fit the model."""
    features = model.config.input_size
    frame_stack = getattr(model.config, "frame_stack", 1)
    for name, X in (("calibration", X_calib), ("test", X_test)):
        if X.shape[2] != features:
            raise KilomlError(f"{where}: {name} sequences have {X.shape[2]} features; the model "
                              f"takes {features}")
        if X.shape[1] % frame_stack:
            raise KilomlError(f"{where}: {name} sequences of {X.shape[1]} steps do not split "
                              f"into stacks of {frame_stack} frames")


def run_export(args: argparse.Namespace) -> int:
    """``kiloml export``: check every input, then write the C sources into a temporary sibling of
    ``--out`` renamed into place; prints a summary, returns the exit status."""
    out = Path(args.out)
    overwrite = getattr(args, "overwrite", False)
    check_output_dir(out, EXPORT_OUTPUT, replace=overwrite, others=(RUN_OUTPUT,))
    _, model = load_run(args.run)
    check_finite_weights(model, Path(args.run) / WEIGHTS_FILE)
    X_calib, X_test, y_test = load_export_data(args.run, args.data, args.data_dir)
    _check_export_data(model, X_calib, X_test, str(args.data or args.run))
    pcm_test, pcm_labels = load_export_pcm(args.run, args.data, args.data_dir)
    bits = args.bits
    if _is_image_run(read_run_config(args.run)) and "bits" not in getattr(args, "given",
                                                                           {"bits"}):
        bits = 8  # the only width of the image ops
    with staged_output_dir(out, EXPORT_OUTPUT, replace=overwrite,
                           others=(RUN_OUTPUT,)) as staging:
        info = export_run(args.run, staging, bits=bits, target=args.target,
                          X_calib=X_calib, X_test=X_test, y_test=y_test, name=args.name,
                          pcm_test=pcm_test, pcm_labels=pcm_labels,
                          max_ram=getattr(args, "max_ram", None),
                          max_flash=getattr(args, "max_flash", None),
                          storage_by=getattr(args, "storage_by", "bytes"),
                          schedule=getattr(args, "schedule", None))
    console = Console(highlight=False, emoji=False)
    ram = (f"{info['ram_bytes']} B RAM with the Cortex-M4 stack"
           if info["stack_bytes_cortex_m4"] is not None
           else f"{info['scratch_ram_bytes']} B arena")
    console.print(f"exported {info['model_kind']} (int{info['bits']} weights) to "
                  f"{escape(str(out))}: {info['weight_flash_bytes']} B weights, {ram}, "
                  f"{info['macs_per_inference']} MACs per inference")
    if "schedule" in info:
        planned = ", ".join(f"{k} {v:,} B" for k, v in info["schedules_planned"].items())
        console.print(f"schedule {info['schedule']['kind']}: planned peak RAM (arena) "
                      f"{info['scratch_ram_bytes']:,} B; planned for each schedule: {planned}")
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
        console.print(f"Arduino library: {escape(str(out / info['arduino_zip']))}")
    return 0


def _format(value, pattern: str = "{}") -> str:
    return "-" if value is None else pattern.format(value)


def _target_list(text: str, flag: str) -> tuple[str, ...]:
    targets = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    unknown = [t for t in targets if t not in VERIFY_TARGETS]
    if unknown:
        raise KilomlError(f"{flag}: unknown target(s) {', '.join(unknown)}; choose from "
                          f"{', '.join(VERIFY_TARGETS)}")
    return targets


def run_verify(args: argparse.Namespace) -> int:
    """``kiloml verify``: run every target, print a table; a one-line error (exit status 1)
    unless at least one target ran, every target that ran matched the simulator on every
    input, and every ``--require``d target ran."""
    targets = _target_list(args.targets, "--targets")
    if not targets:
        raise KilomlError(f"--targets {args.targets!r} names no target; choose from "
                          f"{', '.join(VERIFY_TARGETS)}")
    required = _target_list(getattr(args, "require", "") or "", "--require")
    targets += tuple(t for t in required if t not in targets)
    directory = Path(args.dir)
    if not directory.is_dir():
        raise KilomlError(f"{directory}: no such export directory")
    with OutputLock(directory):
        report = verify_export(directory, targets=targets)
        if read_marker(directory) is not None:
            record_files(directory, EXPORT_OUTPUT, [VERIFY_FILE, BUILD_DIR])
    table = Table(title=f"kiloml verify: {report['inputs']} inputs, int{report['bits']} weights")
    for column in ("target", "exact", "acc.", "float acc.", "flash B", "RAM B", "instr.",
                   "instr./MAC", "cycles", "ms"):
        table.add_column(column, justify="left" if column == "target" else "right")
    console = Console(highlight=False, emoji=False)
    if console.width < 110:
        console = Console(width=110, highlight=False, emoji=False)
    ran, inexact, skipped = [], [], []
    for target, entry in report["targets"].items():
        if entry["status"] != "ok":
            skipped.append(target)
            table.add_row(target, "skipped", *["-"] * 8)
            console.print(f"[yellow]{target} skipped:[/yellow] {escape(entry['reason'])}")
            continue
        ran.append(target)
        if entry["exact_match"] != 1.0:
            inexact.append(f"{target} ({entry['exact_match']:.2%} exact)")
        if entry.get("stream_exact_match", 1.0) != 1.0:
            inexact.append(f"{target}'s stream ({entry['stream_exact_match']:.2%} of "
                           f"{entry['stream_decisions']} decisions exact)")
        table.add_row(target, f"{entry['exact_match']:.4f}", _format(entry["accuracy"], "{:.4f}"),
                      _format(entry["float_accuracy"], "{:.4f}"), _format(entry["flash_bytes"]),
                      _format(entry["ram_bytes"]),
                      _format(entry.get("instructions_per_inference"), "{:,.0f}"),
                      _format(entry.get("instructions_per_mac"), "{:.1f}"),
                      _format(entry.get("cycles_per_inference"), "{:,.0f}"),
                      _format(entry.get("ms_per_inference"), "{:.2f}"))
        if entry.get("instructions_note"):
            console.print(f"[yellow]{target}:[/yellow] {escape(entry['instructions_note'])}")
    console.print(table)
    over = _check_stated_ram(report, console)
    if inexact:
        raise KilomlError(f"the C differs from the integer simulator on {', '.join(inexact)}; "
                          f"see {directory / VERIFY_FILE}")
    missing = [t for t in required if t in skipped]
    if missing:
        raise KilomlError(f"required target(s) {', '.join(missing)} skipped: "
                          + report["targets"][missing[0]]["reason"])
    if not ran:
        raise KilomlError(f"nothing was verified: every target was skipped "
                          f"({', '.join(skipped)}); see the reasons above")
    if over:
        raise KilomlError(over)
    return 0


def _check_stated_ram(report: dict, console: Console) -> str | None:
    """Print the Cortex-M4 RAM measured (arena + logits + painted stack) against what
    ``model.h`` states; the error text when the measurement exceeds the statement."""
    entry = report["targets"].get("cortex-m4", {})
    measured, stated = entry.get("ram_bytes_measured"), entry.get("ram_bytes_stated")
    if entry.get("status") != "ok" or measured is None or stated is None:
        return None
    console.print(f"cortex-m4 RAM: {measured:,} B measured (arena {report['arena_bytes']:,} B, "
                  f"logits {report['output_bytes']:,} B, painted stack "
                  f"{entry['stack_bytes_measured']:,} B), {stated:,} B stated in model.h"
                  + (f" (schedule {report['schedule']})" if report.get("schedule") else ""))
    if measured > stated:
        return (f"the Cortex-M4 measured {measured:,} B of RAM, more than the {stated:,} B "
                "model.h states")
    return None
