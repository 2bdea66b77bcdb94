"""``kiloml verify``: run the exported C on the host and on emulated Cortex-M4/M3 (and, when
asked, on the Arduino Uno's AVR in simavr) and compare every output with the integer simulator,
bit for bit.

Each target builds the export's ``model.c`` and library files with :mod:`kiloml.deploy.targets`
and runs ``harness/model_main.c`` on the stored test inputs. Per target the report has the
fraction of inputs whose outputs equal the simulator's exactly, the accuracy, the flash (the
text + data an image running one inference adds on Cortex-M; the objects' on the host), the
RAM (arena, outputs and the deepest stack from ``-fcallgraph-info=su``; on Cortex-M the stack
is also measured by painting) and, on Cortex-M, the instructions per inference counted by a
QEMU plugin from ``kiloml_predict``'s entry to its return. On ``avr`` the flash and RAM are
those of the smallest program running one inference and are checked against the Uno's (see
:mod:`kiloml.deploy.avr`), and simavr counts the clock cycles per inference (with the
milliseconds at 16 MHz). Results go to ``verify.json``.
"""

import json
from pathlib import Path

import numpy as np
import torch

from kiloml.deploy import avr
from kiloml.deploy.codegen import c_sources, library_dir
from kiloml.deploy.export import EXPORT_FILE, QUANTIZED_FILE, TEST_INPUTS_FILE, float_logits
from kiloml.deploy.stream_verify import run_stream, simulate_stream
from kiloml.deploy.targets import (
    DEFAULT_TARGETS,
    TARGETS,
    Build,
    RunOutput,
    flash_bytes,
    get_target,
    matrix_kernels,
    run_records,
)
from kiloml.errors import KilomlError
from kiloml.ir.graph import Graph
from kiloml.ir.quantize import quantize_input
from kiloml.ir.serialize import load_graph
from kiloml.ir.simulate import simulate_values

VERIFY_FILE = "verify.json"
BUILD_DIR = "build"
#: Test inputs a ShaRNN export's streaming API reads as one stream, one after another.
STREAM_WINDOWS = 4


def load_test_data(out_dir: Path, graph: Graph, X_test: np.ndarray | None,
                   y_test: np.ndarray | None, float_model: torch.nn.Module | None):
    """``(integer inputs [N, ...], labels [N], float logits [N, C] or None)`` from the
    arguments or, without ``X_test``, from ``out_dir/test_inputs.npz`` written by export."""
    if X_test is not None:
        if y_test is None or len(y_test) != len(X_test):
            raise KilomlError("test data needs one label per input (y_test)")
        floats = float_logits(float_model, X_test) if float_model is not None else None
        return quantize_input(graph, X_test), np.asarray(y_test, dtype=np.int64), floats
    if float_model is not None:
        raise KilomlError("a float model needs raw test data (X_test) to compare against")
    path = out_dir / TEST_INPUTS_FILE
    if not path.exists():
        raise KilomlError(f"{out_dir}: no {TEST_INPUTS_FILE}; export with test data "
                          "(X_test, y_test) or pass test data to verify")
    with np.load(path) as data:
        return data["inputs"], data["labels"], data["float_logits"]


def model_build(out_dir: Path, target: str, build_dir: Path, variant: str = "fast") -> Build:
    """The export's ``model.c`` and library sources compiled for ``target``."""
    info = json.loads((out_dir / EXPORT_FILE).read_text())
    sources = [out_dir / "model.c", *(out_dir / f for f in c_sources(info["files"]))]
    return Build(get_target(target), sources, [out_dir], build_dir, variant).compile()


def parse_outputs(lines: list[str], count: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """``(returned values [N], outputs [N, width])`` from the harness's ``l`` lines, in index
    order; every index ``0..count-1`` must be there once."""
    rows = {}
    for line in lines:
        if line.startswith("l "):
            values = [int(v) for v in line.split()[1:]]
            if len(values) != width + 2:
                raise KilomlError(f"harness printed a line without {width} outputs")
            rows[values[0]] = values[1:]
    if sorted(rows) != list(range(count)):
        raise KilomlError(f"harness printed {len(rows)} results for {count} inputs")
    table = np.array([rows[i] for i in range(count)], dtype=np.int64).reshape(count, width + 1)
    return table[:, 0], table[:, 1:]


def run_model(build: Build, inputs: np.ndarray, width: int, poison: int | None = None,
              count_instructions: bool = False) -> tuple[np.ndarray, np.ndarray, RunOutput]:
    """``(returned classes [N], outputs [N, width], run)`` of the built model on integer
    ``inputs`` ``[N, ...]`` (int16; int8 and int32 inputs are passed at their own width);
    ``poison`` fills the arena with that byte before each inference."""
    dtype = {np.dtype(np.int8): "<i1", np.dtype(np.int32): "<i4"}.get(inputs.dtype, "<i2")
    records = [np.ascontiguousarray(x, dtype=dtype).tobytes() for x in inputs]
    output = run_records(build, library_dir() / "harness" / "model_main.c", records, poison,
                         "kiloml_predict" if count_instructions else None)
    returned, outputs = parse_outputs(output.lines, len(inputs), width)
    return returned, outputs, output


def target_metrics(build: Build, out_dir: Path, info: dict) -> dict:
    """Flash, stack and RAM of the model on ``build``'s target."""
    stack = build.stack_bytes("kiloml_predict", matrix_kernels(out_dir / "model.c"))
    return {"flash_bytes": flash_bytes(build), "stack_bytes": stack,
            "ram_bytes": info["scratch_ram_bytes"] + info["output_bytes"] + stack}


def verify_export(out_dir: Path, X_test: np.ndarray | None = None,
                  y_test: np.ndarray | None = None, float_model: torch.nn.Module | None = None,
                  targets: tuple[str, ...] = DEFAULT_TARGETS) -> dict:
    """Compare the exported C with the integer simulator on every test input, per target.

    ``X_test`` (raw ``[N, T, F]``) and ``y_test`` default to ``out_dir/test_inputs.npz``.
    Per target the result has ``exact_match`` (fraction of inputs whose outputs equal the
    simulator's exactly), ``accuracy``, ``float_accuracy``, ``flash_bytes``, ``ram_bytes``,
    ``macs_per_inference`` and, on Cortex-M, ``instructions_per_inference``; a target whose
    toolchain is missing gets ``status: "skipped"`` and the install command; ``avr`` adds
    ``image_flash_bytes``, ``static_ram_bytes``, ``cycles_per_inference`` and
    ``ms_per_inference`` (16 MHz) and refuses a model the Uno cannot hold; a ShaRNN export adds
    ``stream_decisions`` and ``stream_exact_match`` (its streaming API on the first test
    inputs as one stream, against the integer streaming spec). Also writes
    ``out_dir/verify.json``.
    """
    out_dir = Path(out_dir).resolve()  # the builds run in other directories
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise KilomlError(f"unknown target(s) {', '.join(unknown)}; choose from "
                          f"{', '.join(TARGETS)}")
    if not (out_dir / EXPORT_FILE).exists():
        raise KilomlError(f"{out_dir}: not an export directory (no {EXPORT_FILE})")
    info = json.loads((out_dir / EXPORT_FILE).read_text())
    graph = load_graph(out_dir / QUANTIZED_FILE)
    inputs, labels, floats = load_test_data(out_dir, graph, X_test, y_test, float_model)
    values = simulate_values(graph, inputs)
    expected = values[graph.output]
    width = graph.values[graph.output].count
    float_accuracy = float(np.mean(floats.argmax(1) == labels)) if floats is not None else None
    report = {"inputs": int(len(inputs)), "bits": graph.meta.get("bits"),
              "model_kind": graph.meta.get("kind"),
              "simulated_accuracy": float(np.mean(expected.argmax(1) == labels)),
              "float_accuracy": float_accuracy, "arena_bytes": info["scratch_ram_bytes"],
              "output_bytes": info["output_bytes"],
              "schedule": info.get("schedule", {}).get("kind"), "targets": {}}
    for name in targets:
        target = TARGETS[name]
        entry = {"macs_per_inference": info["macs_per_inference"],
                 "float_accuracy": float_accuracy}
        missing = target.missing()
        if missing:
            entry.update(status="skipped", reason=f"{', '.join(missing)} not found; install "
                                                  f"with: {target.install_hint()}")
            report["targets"][name] = entry
            continue
        if name == "avr":
            avr.check_ops(info["ops"])
            avr.check_constants(info["weight_flash_bytes"])
        build = model_build(out_dir, name, out_dir / BUILD_DIR / name)
        if name == "avr":
            image = avr.uno_image(build)
            avr.check_fits(image)
            entry.update(image)
        else:
            entry.update(target_metrics(build, out_dir, info))
        returned, outputs, run = run_model(build, inputs, width,
                                           count_instructions=target.emulated)
        matches = np.all(outputs == expected.reshape(len(inputs), -1), axis=1)
        if graph.return_value is not None:
            matches &= returned == values[graph.return_value]
        entry.update(status="ok", inputs=int(len(inputs)), exact_match=float(np.mean(matches)),
                     accuracy=float(np.mean(outputs.argmax(1) == labels)))
        if info.get("stream_state_bytes") and name != "avr":
            entry.update(_stream_check(build, graph, inputs, width))
        if name == "avr":
            entry.update(_avr_metrics(entry, run, len(inputs)))
        elif target.emulated:
            entry["stack_bytes_measured"] = run.stack_bytes_measured
            entry["ram_bytes_measured"] = (info["scratch_ram_bytes"] + info["output_bytes"]
                                           + run.stack_bytes_measured)
            if name == "cortex-m4" and info.get("stack_bytes_cortex_m4") is not None:
                entry["ram_bytes_stated"] = info["ram_bytes"]
            counts = run.instructions
            entry["instructions_per_inference"] = None
            if counts is not None and len(counts) == len(inputs) and len(inputs):
                entry["instructions_per_inference"] = float(np.mean(counts))
                entry["instructions_min_max"] = [min(counts), max(counts)]
                entry["instructions_per_mac"] = (entry["instructions_per_inference"]
                                                 / info["macs_per_inference"])
            elif run.note is not None:
                entry["instructions_note"] = run.note
            elif counts is not None:
                entry["instructions_note"] = (f"plugin reported {len(counts)} inferences, "
                                              f"expected {len(inputs)}")
        report["targets"][name] = entry
    (out_dir / VERIFY_FILE).write_text(json.dumps(report, indent=2) + "\n")
    return report


def _stream_check(build: Build, graph: Graph, inputs: np.ndarray, width: int) -> dict:
    """The streaming API of a ShaRNN export on the first :data:`STREAM_WINDOWS` test inputs
    as one stream: its decisions and the fraction equal to the integer streaming spec's."""
    stream = inputs[:STREAM_WINDOWS].reshape(-1, inputs.shape[-1])
    expected = simulate_stream(graph, [stream])
    got, _ = run_stream(build, [stream], width)
    same = sum(a == b for a, b in zip(got, expected, strict=False))
    exact = same / len(expected) if len(got) == len(expected) and expected else 0.0
    return {"stream_decisions": len(expected), "stream_exact_match": exact}


def _avr_metrics(entry: dict, run: RunOutput, count: int) -> dict:
    """Stack, RAM (checked against the Uno's), cycles and ms per inference of an avr run."""
    stack = run.stack_bytes_measured or 0
    avr.check_fits(entry, stack)
    cycles = run.instructions
    metrics = {"stack_bytes_measured": stack, "ram_bytes": entry["static_ram_bytes"] + stack,
               "cycles_per_inference": None, "ms_per_inference": None}
    if cycles is not None and len(cycles) == count and count:
        mean = float(np.mean(cycles))
        metrics.update(cycles_per_inference=mean, cycles_min_max=[min(cycles), max(cycles)],
                       ms_per_inference=avr.milliseconds(mean))
    return metrics
