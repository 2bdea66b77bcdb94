"""``kiloml export``: a run directory → integer-only C (or an Arduino library zip).

``out_dir`` receives ``model.h``/``model.c`` (generated), the C library ``kiloml_*.c/h``, an
example ``main.c`` with ``test_vectors.h``, a ``Makefile`` and a ``README.md``, plus what
verification needs: ``quantized_model.npz`` (the integer model), ``test_inputs.npz`` (int16
test inputs, labels, simulator and float logits) and ``export.json`` (sizes, Q-formats, MACs).

A run trained on audio (its ``config.json`` has ``data.sample_rate``) also gets the raw PCM →
label entry point ``kiloml_predict_pcm`` (``kiloml_pcm.c/h``, see
:mod:`kiloml.quantize.pcm_pipeline`), the front-end tables ``kiloml_logmel_tables.h`` for that
rate, ``export.json["pcm"]`` and, when test clips are given, ``test_pcm.npz`` (int16 PCM,
labels and the simulator's logits).
"""

import json
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import torch

from kiloml import __version__
from kiloml.data.logmel import LogMelConfig
from kiloml.deploy.codegen import (
    GeneratedModel,
    fill_template,
    generate_model,
    generate_test_vectors,
    library_dir,
    macs_per_inference,
)
from kiloml.deploy.logmel_tables import tables_flash_bytes, write_logmel_tables
from kiloml.errors import KilomlError
from kiloml.quantize.calibration import check_deployable
from kiloml.quantize.logmel import make_tables
from kiloml.quantize.pcm_pipeline import check_compatible, input_shift, simulate_pcm_batch
from kiloml.quantize.quantizer import quantize_input, quantize_model
from kiloml.quantize.serialize import save_quantized
from kiloml.quantize.simulator import simulate_batch
from kiloml.runs import load_run

TARGETS = ("c", "arduino")
LIBRARY_FILES = ("kiloml_fixed.h", "kiloml_activation.h", "kiloml_activation.c",
                 "kiloml_matvec.h", "kiloml_matvec.c", "kiloml_fastgrnn.h", "kiloml_fastgrnn.c",
                 "kiloml_logmel.h", "kiloml_logmel.c", "kiloml_logmel_tables.h")
PCM_FILES = ("kiloml_pcm.h", "kiloml_pcm.c")
EXPORT_FILE = "export.json"
TEST_PCM_FILE = "test_pcm.npz"
QUANTIZED_FILE = "quantized_model.npz"
TEST_INPUTS_FILE = "test_inputs.npz"
EXAMPLE_VECTORS = 8
DISPLAY_NAMES = {"fastgrnn": "FastGRNN", "fastrnn": "FastRNN"}


def float_logits(model: torch.nn.Module, X: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Float logits ``[N, C]`` of ``model`` for raw input ``X`` ``[N, T, F]``."""
    outputs = []
    with torch.no_grad():
        for start in range(0, len(X), batch_size):
            batch = torch.as_tensor(np.asarray(X[start:start + batch_size], dtype=np.float32))
            outputs.append(model(batch).double().numpy())
    return np.concatenate(outputs) if outputs else np.zeros((0, model.config.num_classes))


def _check_inputs(X: np.ndarray | None, name: str, input_size: int) -> np.ndarray | None:
    if X is None:
        return None
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 3 or X.shape[2] != input_size or X.shape[0] == 0:
        raise KilomlError(f"{name} must be a non-empty [N, T, {input_size}] array, "
                          f"got shape {list(X.shape)}")
    return X


def _write_arduino_zip(out_dir: Path, name: str, generated: GeneratedModel, vectors: str,
                       description: str, readme: str, files: tuple[str, ...]) -> Path:
    """``out_dir/<name>.zip`` in the Arduino library layout."""
    zip_path = out_dir / f"{name}.zip"
    properties = (library_dir() / "templates" / "library.properties.in").read_text()
    sketch = (library_dir() / "templates" / "example.ino.in").read_text()
    for key, value in {"NAME": name, "VERSION": __version__, "DESCRIPTION": description}.items():
        properties = properties.replace(f"@{key}@", value)
        sketch = sketch.replace(f"@{key}@", value)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{name}/library.properties", properties)
        archive.writestr(f"{name}/README.md", readme)
        archive.writestr(f"{name}/src/{name}.h", '#include "model.h"\n')
        archive.writestr(f"{name}/src/model.h", generated.header)
        archive.writestr(f"{name}/src/model.c", generated.source)
        for file in files:  # the copies in out_dir: the front-end tables are per sample rate
            archive.write(out_dir / file, f"{name}/src/{file}")
        archive.writestr(f"{name}/examples/{name}/{name}.ino", sketch)
        archive.writestr(f"{name}/examples/{name}/test_vectors.h", vectors)
    return zip_path


def _pcm_info(q, tables, scratch_bytes: int) -> dict:
    """``export.json["pcm"]``: the PCM entry point's input, conversion and memory."""
    config = tables.config
    work = 4 * config.n_fft + 8 * (config.n_mels + 1)
    features = 2 * q.steps * q.input_size
    shift = input_shift(q)
    return {
        "entry_point": "kiloml_predict_pcm",
        "files": list(PCM_FILES) + ["kiloml_logmel.c", "kiloml_logmel.h",
                                    "kiloml_logmel_tables.h"],
        "sample_rate": config.sample_rate,
        "samples": config.sample_rate,
        "frames": config.num_frames(config.sample_rate),
        "frontend_output_frac_bits": 10,
        "input_shift": shift,
        "conversion": f"x = sat16(shift_round(logmel_q10, {shift}))",
        "frontend_tables_flash_bytes": tables_flash_bytes(tables),
        "logmel_work_bytes": work,
        "features_bytes": features,
        "ram_bytes": work + scratch_bytes + features + 4 * q.num_classes,
    }


def export_run(run_dir: Path, out_dir: Path, bits: int = 16, target: str = "c",
               X_calib: np.ndarray | None = None, X_test: np.ndarray | None = None,
               y_test: np.ndarray | None = None, name: str = "kiloml_model",
               pcm_test: np.ndarray | None = None, pcm_labels: np.ndarray | None = None
               ) -> dict:
    """Quantize the run's model (Q-formats from ``X_calib`` ``[N, T, F]`` raw features, else
    ``X_test``) to ``bits``-bit weights and write the C sources to ``out_dir``.

    ``X_test``/``y_test`` (``[N, T, F]``, ``[N]``) are stored quantized for ``kiloml verify``.
    ``target="arduino"`` also writes ``out_dir/<name>.zip``. Returns the ``export.json`` dict.

    For an audio run (``data.sample_rate`` in ``config.json``) the PCM entry point and the
    front-end tables for that rate are written too; ``pcm_test`` ``[N, n]`` int16 signals (each
    giving ``steps`` frames) with ``pcm_labels`` ``[N]`` are stored in ``test_pcm.npz``.
    """
    if target not in TARGETS:
        raise KilomlError(f"unknown export target {target!r}; choose one of {', '.join(TARGETS)}")
    if bits not in (8, 16):
        raise KilomlError(f"--bits must be 8 or 16, got {bits}")
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
        raise KilomlError(f"library name {name!r} must be a C identifier")
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    config, model = load_run(run_dir)
    check_deployable(model)
    features = model.config.input_size
    X_calib = _check_inputs(X_calib, "calibration data", features)
    X_test = _check_inputs(X_test, "test data", features)
    if X_calib is None:
        X_calib = X_test
    if X_calib is None:
        raise KilomlError("export needs calibration data to choose Q-formats: pass the training "
                          "split (X_calib) or test data")
    if X_test is not None and (y_test is None or len(y_test) != len(X_test)):
        raise KilomlError("test data needs one label per input (y_test)")
    q = quantize_model(model, X_calib, bits=bits)
    sample_rate = config.get("data", {}).get("sample_rate")
    pcm_tables = make_tables(LogMelConfig(int(sample_rate))) if sample_rate else None
    pcm_skipped = None
    if pcm_tables is not None:
        try:
            check_compatible(q, pcm_tables)
        except KilomlError as e:  # features not from the front end: no PCM entry point
            pcm_tables, pcm_skipped = None, str(e)
    if pcm_test is not None:
        if pcm_tables is None:
            raise KilomlError("raw PCM test clips need a run trained on audio (data.sample_rate "
                              "in config.json)")
        pcm_test = np.asarray(pcm_test)
        if (pcm_test.ndim != 2 or pcm_test.dtype != np.int16 or not len(pcm_test)
                or pcm_labels is None or len(pcm_labels) != len(pcm_test)):
            raise KilomlError("pcm_test must be non-empty int16 [N, samples] with one label per "
                              "signal (pcm_labels)")
        if pcm_tables.config.num_frames(pcm_test.shape[1]) != q.steps:
            raise KilomlError(f"PCM test clips of {pcm_test.shape[1]} samples give "
                              f"{pcm_tables.config.num_frames(pcm_test.shape[1])} frames; the "
                              f"model runs {q.steps} steps")
    if X_test is not None and X_test.shape[1] != X_calib.shape[1]:
        raise KilomlError(f"test sequences have {X_test.shape[1]} steps, calibration data "
                          f"{X_calib.shape[1]}; the deployed model runs a fixed length")
    stacking = f" ({q.frame_stack} frames per step)" if q.frame_stack > 1 else ""
    description = (f"{DISPLAY_NAMES[q.kind]} classifier, {q.input_size} features x {q.steps} "
                   f"steps{stacking}, {q.hidden_size} hidden, {q.num_classes} classes, "
                   f"int{bits} weights")
    generated = generate_model(q, description)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "model.h").write_text(generated.header)
    (out_dir / "model.c").write_text(generated.source)
    for file in LIBRARY_FILES:
        shutil.copyfile(library_dir() / file, out_dir / file)
    library_files = LIBRARY_FILES
    if pcm_tables is not None:
        write_logmel_tables(out_dir, pcm_tables.config)  # replaces the shipped 16 kHz tables
        for file in PCM_FILES:
            shutil.copyfile(library_dir() / file, out_dir / file)
        library_files = LIBRARY_FILES + PCM_FILES
    else:
        for file in PCM_FILES:  # from an earlier export
            (out_dir / file).unlink(missing_ok=True)
    for file in ("main.c", "Makefile"):
        shutil.copyfile(library_dir() / "templates" / file, out_dir / file)
    save_quantized(q, out_dir / QUANTIZED_FILE)

    if X_test is not None:
        inputs, labels = quantize_input(q, X_test), np.asarray(y_test, dtype=np.int64)
    else:
        inputs = quantize_input(q, X_calib[:EXAMPLE_VECTORS])
        labels = np.full(len(inputs), -1, dtype=np.int64)
    simulated = simulate_batch(q, inputs)
    if X_test is not None:
        float_out = float_logits(model, X_test)
        np.savez(out_dir / TEST_INPUTS_FILE, inputs=inputs, labels=labels,
                 simulated_logits=simulated, float_logits=float_out)
    else:
        (out_dir / TEST_INPUTS_FILE).unlink(missing_ok=True)  # from an earlier export
    vectors = generate_test_vectors(q, inputs[:EXAMPLE_VECTORS], labels[:EXAMPLE_VECTORS],
                                    simulated[:EXAMPLE_VECTORS])
    (out_dir / "test_vectors.h").write_text(vectors)

    info = {
        "kiloml_version": __version__,
        "run": run_dir.name,
        "dataset": config.get("data", {}).get("dataset"),
        "model_kind": q.kind,
        "gate": q.gate or None,
        "update": q.update,
        "readout": q.readout,
        "input_size": q.input_size,
        "steps": q.steps,
        "frame_stack": q.frame_stack,
        "hidden_size": q.hidden_size,
        "num_classes": q.num_classes,
        "w_rank": q.w_rank,
        "u_rank": q.u_rank,
        "bits": bits,
        "target": target,
        "weight_flash_bytes": generated.weight_flash_bytes,
        "scratch_ram_bytes": generated.scratch_bytes,
        "macs_per_inference": macs_per_inference(q),
        "q_formats": dict(q.formats),
        "tensor_frac_bits": {n: t.frac_bits for n, t in q.tensors.items()},
        "storage": generated.storage,
        "input_quantization": f"x_int16 = clamp(round(x * 2**{q.formats['input']}), "
                              "-32768, 32767)",
        "logits_scale": f"logit = logit_int32 * 2**-{q.formats['logits']}",
        "test_count": int(len(inputs)) if X_test is not None else 0,
    }
    (out_dir / TEST_PCM_FILE).unlink(missing_ok=True)  # from an earlier export
    if pcm_skipped is not None:
        info["pcm_skipped"] = pcm_skipped
    if pcm_tables is not None:
        info["pcm"] = _pcm_info(q, pcm_tables, generated.scratch_bytes)
        if pcm_test is not None:
            pcm_logits = simulate_pcm_batch(q, pcm_tables, pcm_test)
            labels_pcm = np.asarray(pcm_labels, dtype=np.int64)
            np.savez_compressed(out_dir / TEST_PCM_FILE, pcm=pcm_test, labels=labels_pcm,
                                simulated_logits=pcm_logits)
            info["pcm"]["test_count"] = int(len(pcm_test))
            info["pcm"]["simulated_accuracy"] = float(np.mean(pcm_logits.argmax(1)
                                                              == labels_pcm))
    if X_test is not None:
        info["simulated_accuracy"] = float(np.mean(simulated.argmax(1) == labels))
        info["float_accuracy"] = float(np.mean(float_out.argmax(1) == labels))
        info["float_agreement"] = float(np.mean(simulated.argmax(1) == float_out.argmax(1)))
    readme = fill_template("README.md.in", {
        "NAME": name, "DESCRIPTION": description,
        "VERSION": __version__, "STEPS": q.steps, "INPUT_SIZE": q.input_size,
        "FRAME_STACK": q.frame_stack,
        "INPUT_FRAC_BITS": q.formats["input"], "NUM_CLASSES": q.num_classes,
        "LOGITS_FRAC_BITS": q.formats["logits"], "WEIGHT_BITS": bits,
        "WEIGHT_FLASH_BYTES": generated.weight_flash_bytes,
        "SCRATCH_BYTES": generated.scratch_bytes, "MACS": info["macs_per_inference"]})
    (out_dir / "README.md").write_text(readme)
    if target == "arduino":
        zip_path = _write_arduino_zip(out_dir, name, generated, vectors, description, readme,
                                      library_files)
        info["arduino_zip"] = zip_path.name
    (out_dir / EXPORT_FILE).write_text(json.dumps(info, indent=2) + "\n")
    return info
