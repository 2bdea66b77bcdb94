"""``kiloml export``: a run directory → integer-only C (or an Arduino library zip).

The run's model is lowered to the float graph (:func:`kiloml.ir.lower.lower_model`), calibrated
on training data, quantized and written as C. ``out_dir`` receives ``model.h``, ``model.c``
and ``kl_model_config.h`` (generated), the library files the graph's ops need, an example
``main.c`` with ``test_vectors.h``, a ``Makefile`` and a ``README.md``, plus what verification
needs: ``quantized_model.npz`` (the integer graph), ``test_inputs.npz`` (integer test inputs,
labels, simulator and float logits) and ``export.json`` (sizes, Q-formats, the arena plan,
MACs).

A run trained on audio (its ``config.json`` has ``data.sample_rate``) also gets the raw PCM →
label entry point ``kiloml_predict_pcm`` (``kiloml_pcm.c/h``, see :mod:`kiloml.ir.pcm`), the
front-end tables ``kiloml_logmel_tables.h`` for that rate, ``export.json["pcm"]`` and, when
test clips are given, ``test_pcm.npz`` (int16 PCM, labels and the simulator's logits).

Budgets: ``max_ram`` (bytes of the arena plus the output buffer) and ``max_flash`` (bytes of
the stored constants) are checked before anything is written.
"""

import json
import re
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

from kiloml import __version__
from kiloml.data.logmel import LogMelConfig
from kiloml.deploy.codegen import (
    MODEL_CONFIG_FILE,
    GeneratedModel,
    c_sources,
    fill_template,
    generate_model,
    generate_test_vectors,
    library_dir,
    library_file,
)
from kiloml.deploy.logmel_tables import tables_flash_bytes, write_logmel_tables
from kiloml.deploy.targets import TARGETS, Build, matrix_kernels
from kiloml.errors import KilomlError
from kiloml.ir import quantize_model
from kiloml.ir.early_exit import instances
from kiloml.ir.graph import Graph
from kiloml.ir.pcm import check_compatible, input_shift, simulate_pcm_batch
from kiloml.ir.quantize import quantize_input
from kiloml.ir.schedule_choice import default_schedule, plan_schedules
from kiloml.ir.serialize import save_graph
from kiloml.ir.simulate import simulate_values
from kiloml.ops.logmel import make_tables
from kiloml.ops.matrix import STORAGE_RULES
from kiloml.runs import load_run

EXPORT_TARGETS = ("c", "arduino")
FRONTEND_FILES = ("kiloml_logmel.h", "kiloml_logmel.c", "kiloml_logmel_tables.h")
PCM_FILES = ("kiloml_pcm.h", "kiloml_pcm.c")
EXPORT_FILE = "export.json"
TEST_PCM_FILE = "test_pcm.npz"
QUANTIZED_FILE = "quantized_model.npz"
TEST_INPUTS_FILE = "test_inputs.npz"
EXAMPLE_VECTORS = 8
#: Every C library file an export may copy (a given model needs some of them).
LIBRARY_FILES = tuple(sorted({p.name for folder in (library_dir(), library_dir() / "ops")
                              for p in folder.glob("k[il]*.[ch]")}))
DISPLAY_NAMES = {"fastgrnn": "FastGRNN", "fastrnn": "FastRNN", "gru": "GRU", "lstm": "LSTM",
                 "dscnn": "DS-CNN"}


def float_logits(model: torch.nn.Module, X: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Float logits ``[N, C]`` of ``model`` for raw input ``X`` ``[N, T, F]``."""
    outputs = []
    model.eval()
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
    if not np.all(np.isfinite(X)):
        raise KilomlError(f"{name} contains NaN or infinite values")
    return X


def _check_weights(model: torch.nn.Module) -> None:
    bad = [name for name, t in model.state_dict().items()
           if t.is_floating_point() and not torch.all(torch.isfinite(t))]
    if bad:
        raise KilomlError(f"the model has non-finite weights ({', '.join(bad[:5])}); it cannot "
                          "be exported — retrain it")


def describe(config: dict, graph: Graph, bits: int) -> str:
    """One line on what the export is."""
    kind = config.get("kind", graph.meta.get("kind", "model"))
    if graph.meta.get("image_rows"):
        channels, height, width = graph.values[graph.input].shape
        return (f"{kind} image classifier, {channels}x{height}x{width} images, width "
                f"{config.get('width_mult', 1):g}, {graph.meta['num_classes']} classes, "
                f"int{bits} weights and activations")
    steps, features = graph.values[graph.input].shape
    k = graph.meta.get("frame_stack", 1)
    stacking = f" ({k} frames per step)" if k > 1 else ""
    width = f", {config['hidden_size']} hidden" if "hidden_size" in config else ""
    if "channels" in config:
        width = f", {config['channels']} channels, {config['blocks']} blocks"
    return (f"{DISPLAY_NAMES.get(kind, kind)} classifier, {features} features x {steps} "
            f"steps{stacking}{width}, {graph.meta['num_classes']} classes, int{bits} weights")


def _write_arduino_zip(out_dir: Path, name: str, generated: GeneratedModel, vectors: str,
                       description: str, readme: str, files: list[str]) -> Path:
    """``out_dir/<name>.zip`` in the Arduino library layout."""
    zip_path = out_dir / f"{name}.zip"
    values = {"NAME": name, "VERSION": __version__, "DESCRIPTION": description}
    properties = fill_template("library.properties.in", values)
    sketch = fill_template("example.ino.in", values)
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


def _pcm_info(graph: Graph, tables, scratch_bytes: int) -> dict:
    """``export.json["pcm"]``: the PCM entry point's input, conversion and memory."""
    config = tables.config
    work = 4 * config.n_fft + 8 * (config.n_mels + 1)
    features = graph.values[graph.input].nbytes
    shift = input_shift(graph)
    return {
        "entry_point": "kiloml_predict_pcm",
        "files": list(PCM_FILES) + list(FRONTEND_FILES),
        "sample_rate": config.sample_rate,
        "samples": config.sample_rate,
        "frames": config.num_frames(config.sample_rate),
        "frontend_output_frac_bits": 10,
        "input_shift": shift,
        "conversion": f"x = sat16(shift_round(logmel_q10, {shift}))",
        "frontend_tables_flash_bytes": tables_flash_bytes(tables),
        "logmel_work_bytes": work,
        "features_bytes": features,
        "ram_bytes": work + scratch_bytes + features
                     + graph.values[graph.output].nbytes,
    }


def scheduled_graph(graph: Graph, schedule: str | None) -> tuple[Graph, dict[str, int]]:
    """``(the quantized image graph under schedule, planned arena bytes of every applicable
    schedule)``; ``None`` is the schedule with the smallest planned arena."""
    planned = plan_schedules(graph)
    arenas = {kind: arena for kind, (_, arena) in planned.items()}
    if schedule is None:
        schedule = default_schedule(planned)
    if schedule not in planned:
        raise KilomlError(f"--schedule {schedule} does not apply to this model; it takes "
                          f"{' or '.join(planned)}")
    scheduled = planned[schedule][0]
    scheduled.meta["schedules_planned"] = arenas
    return scheduled, arenas


def cortex_m4_stack(generated: GeneratedModel, work: Path) -> int | None:
    """The deepest stack of ``kiloml_predict`` on Cortex-M4 from the compiler's call graph
    (``None`` without arm-none-eabi-gcc)."""
    target = TARGETS["cortex-m4"]
    if target.missing():
        return None
    files = write_sources(generated, work / "src")
    sources = [work / "src" / "model.c", *(work / "src" / f for f in c_sources(files))]
    build = Build(target, sources, [work / "src"], work / "build").compile()
    return build.stack_bytes("kiloml_predict", matrix_kernels(work / "src" / "model.c"))


def check_budget(generated: GeneratedModel, graph: Graph, max_ram: int | None,
                 max_flash: int | None) -> None:
    """A one-line error when the plan exceeds a RAM or flash budget (both numbers given)."""
    ram = generated.ram_bytes
    if max_ram is not None and ram > max_ram:
        parts = f"arena {generated.scratch_bytes:,} B, outputs"
        parts += f", stack {generated.stack_bytes:,} B" if generated.stack_bytes else ""
        raise KilomlError(f"the model needs {ram:,} B of RAM ({parts}), over the budget of "
                          f"{max_ram:,} B (--max-ram); nothing was written")
    if max_flash is not None and generated.weight_flash_bytes > max_flash:
        raise KilomlError(f"the model stores {generated.weight_flash_bytes:,} B of constants, "
                          f"over the budget of {max_flash:,} B (--max-flash); nothing was "
                          "written")


def write_sources(generated: GeneratedModel, out_dir: Path, extra_files: list[str] = ()
                  ) -> list[str]:
    """Write ``model.h``, ``model.c``, ``kl_model_config.h``, the library files they need (and
    ``extra_files``), the example ``main.c`` and the ``Makefile`` into ``out_dir``; returns the
    library files and ``kl_model_config.h``. Library files of an earlier export that this model
    does not need are removed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = [*generated.files, *(f for f in extra_files if f not in generated.files)]
    for stale in out_dir.glob("k[il]*.[ch]"):
        if stale.name.startswith(("kl_", "kiloml_")) and stale.name not in files:
            stale.unlink()
    (out_dir / "model.h").write_text(generated.header)
    (out_dir / "model.c").write_text(generated.source)
    (out_dir / MODEL_CONFIG_FILE).write_text(generated.config)
    for file in files:
        shutil.copyfile(library_file(file), out_dir / file)
    shutil.copyfile(library_dir() / "templates" / "main.c", out_dir / "main.c")
    (out_dir / "Makefile").write_text(fill_template("Makefile.in", {
        "SOURCES": " ".join(["model.c", *c_sources(files)])}))
    return [*files, MODEL_CONFIG_FILE]


def export_run(run_dir: Path, out_dir: Path, bits: int = 16, target: str = "c",
               X_calib: np.ndarray | None = None, X_test: np.ndarray | None = None,
               y_test: np.ndarray | None = None, name: str = "kiloml_model",
               pcm_test: np.ndarray | None = None, pcm_labels: np.ndarray | None = None,
               max_ram: int | None = None, max_flash: int | None = None,
               measure_stack: bool = True, storage_by: str = "bytes",
               schedule: str | None = None) -> dict:
    """Quantize the run's model (Q-formats from ``X_calib`` ``[N, T, F]`` raw features, else
    ``X_test``) to ``bits``-bit weights and write the C sources to ``out_dir``.

    ``X_test``/``y_test`` (``[N, T, F]``, ``[N]``) are stored quantized for ``kiloml verify``
    (an EMI-FastGRNN's: every window's instances, each with its window's label).
    ``target="arduino"`` also writes ``out_dir/<name>.zip``. Returns the ``export.json`` dict.

    For an audio run (``data.sample_rate`` in ``config.json``) the PCM entry point and the
    front-end tables for that rate are written too; ``pcm_test`` ``[N, n]`` int16 signals (each
    giving ``steps`` frames) with ``pcm_labels`` ``[N]`` are stored in ``test_pcm.npz``.

    With ``measure_stack`` and arm-none-eabi-gcc on the path, the model is compiled for
    Cortex-M4 once to state its stack and total RAM in ``model.h``; ``max_ram`` (bytes: arena,
    outputs and, when measured, that stack) and ``max_flash`` (bytes of stored constants) are
    budgets checked before anything is written.

    ``storage_by`` chooses each matrix's format (dense, CSR, blocked): ``"bytes"`` the smallest,
    ``"speed"`` the fewest Cortex-M4 instructions the cost model predicts when that is at least
    ``SPEED_MARGIN`` (5 %) fewer than the smallest format's
    (:func:`kiloml.compress.size.tensor_storage`).

    An image family (``X_calib``/``X_test`` image rows ``[N, H, W·C]``) is exported at int8
    under ``schedule`` (``layers``, ``patches`` or ``rnnpool``; default: the applicable one
    with the smallest planned arena, :mod:`kiloml.ir.schedule_choice`); ``quantized_model.npz``
    holds its layer-by-layer graph (the same integers).
    """
    if storage_by not in STORAGE_RULES:
        raise KilomlError(f"--storage-by must be one of {', '.join(STORAGE_RULES)}, got "
                          f"{storage_by!r}")
    if target not in EXPORT_TARGETS:
        raise KilomlError(f"unknown export target {target!r}; choose one of "
                          f"{', '.join(EXPORT_TARGETS)}")
    if bits not in (8, 16):
        raise KilomlError(f"--bits must be 8 or 16, got {bits}")
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
        raise KilomlError(f"library name {name!r} must be a C identifier")
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    config, model = load_run(run_dir)
    _check_weights(model)
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
    if X_test is not None and X_test.shape[1] != X_calib.shape[1]:
        raise KilomlError(f"test sequences have {X_test.shape[1]} steps, calibration data "
                          f"{X_calib.shape[1]}; the deployed model runs a fixed length")
    image = hasattr(model.config, "image_shape")
    if schedule is not None and not image:
        raise KilomlError(f"--schedule applies to image models, not {model.config.kind}")
    if image and bits != 8:
        raise KilomlError(f"image models are exported with int8 weights and activations; "
                          f"--bits {bits} does not apply (use --bits 8)")
    graph = quantize_model(model, X_calib, bits)
    for node in graph.nodes:
        for tensor in node.q.values():
            tensor.storage = storage_by
    layer_graph = graph
    if image:
        graph, planned = scheduled_graph(graph, schedule)
    sample_rate = config.get("data", {}).get("sample_rate")
    pcm_tables = make_tables(LogMelConfig(int(sample_rate))) if sample_rate else None
    pcm_skipped = None
    if "early_exit" in graph.meta:  # EMI-FastGRNN: the graph reads one instance of a window
        settings = graph.meta["early_exit"]
        X_calib = instances(X_calib, settings["width"], settings["stride"])
        if X_test is not None:  # each instance with its window's label
            X_test = instances(X_test, settings["width"], settings["stride"])
            y_test = np.repeat(np.asarray(y_test), settings["instances"])
        if pcm_tables is not None:
            pcm_tables, pcm_skipped = None, ("an EMI-FastGRNN reads instances, not a clip: no "
                                             "PCM entry point")
            pcm_test = pcm_labels = None
    if pcm_tables is not None:
        try:
            check_compatible(graph, pcm_tables)
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
        steps = graph.values[graph.input].shape[0]
        if pcm_tables.config.num_frames(pcm_test.shape[1]) != steps:
            raise KilomlError(f"PCM test clips of {pcm_test.shape[1]} samples give "
                              f"{pcm_tables.config.num_frames(pcm_test.shape[1])} frames; the "
                              f"model runs {steps} steps")
    description = describe(config.get("model", {}), graph, bits)
    generated = generate_model(graph, description)
    if measure_stack:
        with tempfile.TemporaryDirectory() as work:
            stack = cortex_m4_stack(generated, Path(work))
        generated = generate_model(graph, description, stack)
    check_budget(generated, graph, max_ram, max_flash)

    if X_test is not None:
        inputs, labels = quantize_input(graph, X_test), np.asarray(y_test, dtype=np.int64)
    else:
        inputs = quantize_input(graph, X_calib[:EXAMPLE_VECTORS])
        labels = np.full(len(inputs), -1, dtype=np.int64)
    simulated = simulate_values(graph, inputs)[graph.output]

    extra = list(FRONTEND_FILES + PCM_FILES) if pcm_tables is not None else []
    files = write_sources(generated, out_dir, extra)
    if pcm_tables is not None:
        write_logmel_tables(out_dir, pcm_tables.config)  # the tables for the run's rate
    for stale in (TEST_PCM_FILE, TEST_INPUTS_FILE):  # from an earlier export
        (out_dir / stale).unlink(missing_ok=True)
    save_graph(layer_graph, out_dir / QUANTIZED_FILE)
    if X_test is not None:
        float_out = float_logits(model, X_test)
        np.savez(out_dir / TEST_INPUTS_FILE, inputs=inputs, labels=labels,
                 simulated_logits=simulated, float_logits=float_out)
    vectors = generate_test_vectors(graph, inputs[:EXAMPLE_VECTORS], labels[:EXAMPLE_VECTORS],
                                    simulated[:EXAMPLE_VECTORS])
    (out_dir / "test_vectors.h").write_text(vectors)

    x_value, y_value = graph.values[graph.input], graph.values[graph.output]
    info = {
        "kiloml_version": __version__,
        "run": run_dir.name,
        "dataset": config.get("data", {}).get("dataset"),
        "model_kind": graph.meta.get("kind"),
        "model": config.get("model", {}),
        "input_size": x_value.shape[-1],
        "steps": x_value.shape[0],
        "frame_stack": graph.meta.get("frame_stack", 1),
        "num_classes": graph.meta["num_classes"],
        "bits": bits,
        "target": target,
        "ops": graph.ops(),
        "files": files,
        "weight_flash_bytes": generated.weight_flash_bytes,
        "scratch_ram_bytes": generated.scratch_bytes,
        "output_bytes": y_value.nbytes,
        "stack_bytes_cortex_m4": generated.stack_bytes,
        "ram_bytes": generated.ram_bytes,
        "stream_state_bytes": generated.stream_state_bytes,
        "macs_per_inference": generated.macs,
        "q_formats": {v.name: v.frac_bits for v in graph.values.values()},
        "arena": {f"{owner}.{buffer}" if buffer else owner: offset
                  for (owner, buffer), offset in generated.plan.offsets.items()},
        "storage_by": storage_by,
        "storage": generated.storage,
        "input_quantization": f"x_int16 = clamp(round(x * 2**{x_value.frac_bits}), "
                              "-32768, 32767)",
        "logits_scale": f"logit = logit_int32 * 2**-{y_value.frac_bits}",
        "test_count": int(len(inputs)) if X_test is not None else 0,
    }
    if image:
        info.update(image_shape=list(x_value.shape), input_offset=graph.meta["input_offset"],
                    schedule=graph.meta.get("schedule", {"kind": "layers"}),
                    schedules_planned=planned)
        info["input_quantization"] = (f"x_int16[c][h][w] = clamp(round((pixel - "
                                      f"input_offset[c]) * 2**{x_value.frac_bits}), -32768, "
                                      "32767)")
    if pcm_skipped is not None:
        info["pcm_skipped"] = pcm_skipped
    if pcm_tables is not None:
        info["pcm"] = _pcm_info(graph, pcm_tables, generated.scratch_bytes)
        if pcm_test is not None:
            pcm_logits = simulate_pcm_batch(graph, pcm_tables, pcm_test)
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
        "NAME": name, "DESCRIPTION": description, "VERSION": __version__,
        "STEPS": x_value.shape[0], "INPUT_SIZE": x_value.shape[-1],
        "FRAME_STACK": info["frame_stack"], "INPUT_FRAC_BITS": x_value.frac_bits,
        "NUM_CLASSES": info["num_classes"], "LOGITS_FRAC_BITS": y_value.frac_bits,
        "WEIGHT_BITS": bits, "WEIGHT_FLASH_BYTES": generated.weight_flash_bytes,
        "SCRATCH_BYTES": generated.scratch_bytes, "MACS": generated.macs,
        "FILES": ", ".join(f"`{f}`" for f in files if f != MODEL_CONFIG_FILE)})
    (out_dir / "README.md").write_text(readme)
    if target == "arduino":
        zip_path = _write_arduino_zip(out_dir, name, generated, vectors, description, readme,
                                      files)
        info["arduino_zip"] = zip_path.name
    (out_dir / EXPORT_FILE).write_text(json.dumps(info, indent=2) + "\n")
    return info
