"""``kiloml verify``: run the exported C on the host and on emulated Cortex-M4/M3 and compare
every output with the integer simulator, bit for bit.

Targets:

* ``host`` — the system ``gcc``; inputs go through stdin, logits come back on stdout.
* ``cortex-m4`` / ``cortex-m3`` — ``arm-none-eabi-gcc -mcpu=cortex-m4|m3 -mthumb -O2`` with
  kiloml's startup code and linker script, run on QEMU ``mps2-an386`` / ``mps2-an385`` with
  semihosting; the inputs are compiled into the image. Flash is the ``text + data`` difference
  of an image that runs one inference and one that does not; RAM is the scratch buffer, the
  logits and the deepest stack from ``-fcallgraph-info=su`` (the harness also measures the
  stack by painting it); instructions per inference come from a small QEMU plugin that counts
  executed instructions between the entry of ``kiloml_predict`` and the harness's
  ``kiloml_bench_end`` call right after it returns.

Results go to ``out_dir/verify.json``.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import torch

from kiloml.deploy.codegen import c_rows, fill_template, library_dir
from kiloml.deploy.export import (
    EXPORT_FILE,
    QUANTIZED_FILE,
    TEST_INPUTS_FILE,
    float_logits,
)
from kiloml.deploy.toolchain import (
    APT_INSTALL,
    CORTEX_M_TOOLS,
    STRICT_CFLAGS,
    image_size,
    matrix_kernels,
    missing_tools,
    run,
    symbol_address,
    worst_stack_bytes,
)
from kiloml.errors import KilomlError
from kiloml.quantize.quantizer import QuantizedModel, quantize_input
from kiloml.quantize.serialize import load_quantized
from kiloml.quantize.simulator import simulate_batch

TARGETS = ("host", "cortex-m4", "cortex-m3")
MACHINES = {"cortex-m4": ("mps2-an386", "cortex-m4"), "cortex-m3": ("mps2-an385", "cortex-m3")}
MODEL_SOURCES = ("model.c", "kiloml_fastgrnn.c", "kiloml_matvec.c", "kiloml_activation.c")
VERIFY_FILE = "verify.json"
BUILD_DIR = "build"
QEMU_TIMEOUT_SECONDS = 600
#: Inputs compiled into one Cortex-M image (each is steps * features int16 values); more inputs
#: run as several images.
MAX_CORTEX_M_INPUTS = 200


def load_test_data(out_dir: Path, q: QuantizedModel, X_test: np.ndarray | None,
              y_test: np.ndarray | None, float_model: torch.nn.Module | None):
    """``(inputs int16 [N, T, F], labels [N], float logits [N, C] or None)`` from the arguments
    or, without ``X_test``, from ``out_dir/test_inputs.npz`` written by export."""
    if X_test is not None:
        if y_test is None or len(y_test) != len(X_test):
            raise KilomlError("test data needs one label per input (y_test)")
        floats = float_logits(float_model, X_test) if float_model is not None else None
        return quantize_input(q, X_test), np.asarray(y_test, dtype=np.int64), floats
    path = out_dir / TEST_INPUTS_FILE
    if not path.exists():
        raise KilomlError(f"{out_dir}: no {TEST_INPUTS_FILE}; export with test data "
                          "(X_test, y_test) or pass test data to verify")
    with np.load(path) as data:
        floats = data["float_logits"] if float_model is None else None
        inputs, labels = data["inputs"], data["labels"]
    if float_model is not None:
        raise KilomlError("a float model needs raw test data (X_test) to compare against")
    return inputs, labels, floats


def parse_logits(text: str, num_classes: int) -> np.ndarray:
    """int64 ``[N, C]`` from lines of ``C`` integers."""
    rows = [[int(v) for v in line.split()] for line in text.splitlines() if line.strip()]
    if any(len(row) != num_classes for row in rows):
        raise KilomlError(f"harness printed a line without {num_classes} logits")
    return np.array(rows, dtype=np.int64).reshape(len(rows), num_classes)


def build_host_harness(out_dir: Path, build_dir: Path, extra_flags: tuple[str, ...] = ()
                       ) -> Path:
    """Compile ``harness/host_stdin.c`` with the exported sources (strict flags, ``-O2`` and
    ``extra_flags``); returns the executable."""
    build_dir.mkdir(parents=True, exist_ok=True)
    executable = build_dir / "host_harness"
    sources = [str(library_dir() / "harness" / "host_stdin.c")]
    sources += [str(out_dir / name) for name in MODEL_SOURCES]
    run(["gcc", *STRICT_CFLAGS, "-O2", *extra_flags, "-I", str(out_dir), *sources, "-o",
         str(executable)])
    return executable


def run_host(executable: Path, inputs: np.ndarray, num_classes: int,
             poison: int | None = None) -> np.ndarray:
    """Logits ``[N, C]`` of the host harness for int16 ``inputs`` ``[N, T, F]``; ``poison``
    (0..255) fills the scratch buffer with that byte before every inference."""
    command = [str(executable)] + ([str(poison)] if poison is not None else [])
    result = run(command, stdin=np.ascontiguousarray(inputs, dtype="<i2").tobytes())
    return parse_logits(result.stdout.decode(), num_classes)


def _compile_objects(compiler: str, flags: list[str], sources: list[Path], build_dir: Path,
                     strict: bool) -> list[Path]:
    objects = []
    for source in sources:
        target = build_dir / (source.stem + ".o")
        standard = list(STRICT_CFLAGS) if strict else ["-std=gnu99", "-Wall", "-Wextra", "-Werror"]
        run([compiler, *standard, *flags, "-fcallgraph-info=su", "-c", str(source), "-o",
             str(target)], cwd=build_dir)
        objects.append(target)
    return objects


def _host_metrics(out_dir: Path, build_dir: Path, info: dict) -> dict:
    objects = _compile_objects("gcc", ["-O2", "-I", str(out_dir)],
                               [out_dir / name for name in MODEL_SOURCES], build_dir, True)
    flash = sum(image_size("size", obj) for obj in objects) if shutil.which("size") else None
    stack = worst_stack_bytes([o.with_suffix(".ci") for o in objects], "kiloml_predict",
                              matrix_kernels(out_dir / "model.c"))
    return {"flash_bytes": flash, "stack_bytes": stack,
            "ram_bytes": info["scratch_ram_bytes"] + 4 * info["num_classes"] + stack}


def _harness_inputs(build_dir: Path, q: QuantizedModel, inputs: np.ndarray) -> None:
    text = fill_template("harness_inputs.h.in", {
        "INPUT_FRAC_BITS": q.formats["input"], "COUNT": len(inputs), "INPUTS": c_rows(inputs)},
        "qemu")
    (build_dir / "harness_inputs.h").write_text(text)


def build_instruction_counter(build_dir: Path) -> Path:
    """The QEMU plugin ``qemu/insn_count_plugin.c`` built with the host ``gcc``."""
    plugin = build_dir / "insn_count_plugin.so"
    if not plugin.exists():
        build_dir.mkdir(parents=True, exist_ok=True)
        run(["gcc", "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(plugin),
             str(library_dir() / "qemu" / "insn_count_plugin.c")])
    return plugin


def _output_lines(result) -> list[str]:
    """stdout and stderr of a finished QEMU run, as lines."""
    return (result.stdout + result.stderr).decode(errors="replace").splitlines()


def _run_qemu(machine: str, elf: Path, plugin: Path | None, nm_tool: str
              ) -> tuple[list[str], list[int] | None, str | None]:
    """Run one harness image; ``(output lines, instruction counts or None, note)``."""
    command = ["qemu-system-arm", "-machine", machine, "-nographic", "-monitor", "none",
               "-serial", "none", "-semihosting-config", "enable=on,target=native",
               "-kernel", str(elf)]
    note = None
    if plugin is not None:
        start = symbol_address(nm_tool, elf, "kiloml_predict")
        end = symbol_address(nm_tool, elf, "kiloml_bench_end")
        try:
            result = run(command + ["-d", "plugin", "-plugin",
                                    f"{plugin},start={start:#x},end={end:#x}"],
                         timeout=QEMU_TIMEOUT_SECONDS)
            lines = _output_lines(result)
            return lines, [int(line.split()[1]) for line in lines
                           if line.startswith("kiloml-insns ")], None
        except KilomlError as e:
            note = f"instruction counting unavailable: {e}"
    return _output_lines(run(command, timeout=QEMU_TIMEOUT_SECONDS)), None, note


def run_cortex_m(out_dir: Path, build_dir: Path, target: str, q: QuantizedModel,
                 inputs: np.ndarray, info: dict) -> tuple[np.ndarray, dict]:
    """Build and run the QEMU harness for ``target`` on every input (one image per
    :data:`MAX_CORTEX_M_INPUTS` inputs); returns ``(logits [N, C], metrics)``."""
    machine, cpu = MACHINES[target]
    build_dir.mkdir(parents=True, exist_ok=True)
    qemu_dir = library_dir() / "qemu"
    flags = [f"-mcpu={cpu}", "-mthumb", "-O2", "-ffunction-sections", "-fdata-sections",
             "-I", str(out_dir), "-I", str(qemu_dir)]
    compiler, nm_tool, size_tool = "arm-none-eabi-gcc", "arm-none-eabi-nm", "arm-none-eabi-size"
    model_objects = _compile_objects(compiler, flags, [out_dir / n for n in MODEL_SOURCES],
                                     build_dir, strict=True)
    # The image links no C library: keep GCC from turning the startup loops into memcpy.
    support = _compile_objects(compiler, flags + ["-fno-tree-loop-distribute-patterns"],
                               [qemu_dir / "startup.c", qemu_dir / "semihosting.c"], build_dir,
                               False)
    size_with = _compile_objects(compiler, flags, [qemu_dir / "size_main.c"], build_dir, False)
    baseline = build_dir / "size_baseline.o"
    run([compiler, "-std=gnu99", *flags, "-DKILOML_SIZE_BASELINE", "-c",
         str(qemu_dir / "size_main.c"), "-o", str(baseline)])
    link = [f"-mcpu={cpu}", "-mthumb", "-nostdlib", "-T", str(qemu_dir / "mps2.ld"),
            "-Wl,--gc-sections"]

    def link_image(elf: Path, objects: list[Path]) -> Path:
        run([compiler, *link, *[str(o) for o in objects], "-lgcc", "-o", str(elf)])
        return elf

    flash = (image_size(size_tool, link_image(build_dir / "size.elf",
                                              support + size_with + model_objects))
             - image_size(size_tool, link_image(build_dir / "size_baseline.elf",
                                                support + [baseline])))
    stack = worst_stack_bytes([o.with_suffix(".ci") for o in model_objects], "kiloml_predict",
                              matrix_kernels(out_dir / "model.c"))
    metrics = {"flash_bytes": flash, "stack_bytes": stack,
               "ram_bytes": info["scratch_ram_bytes"] + 4 * info["num_classes"] + stack}
    try:
        plugin = build_instruction_counter(build_dir.parent)
    except KilomlError as e:
        plugin, metrics["instructions_note"] = None, f"instruction counting unavailable: {e}"
    logit_lines: list[str] = []
    counts: list[int] | None = [] if plugin is not None else None
    measured = []
    for first in range(0, len(inputs), MAX_CORTEX_M_INPUTS):
        chunk_dir = build_dir / f"inputs_{first // MAX_CORTEX_M_INPUTS}"
        chunk_dir.mkdir(exist_ok=True)
        _harness_inputs(chunk_dir, q, inputs[first:first + MAX_CORTEX_M_INPUTS])
        harness = _compile_objects(compiler, flags + ["-I", str(chunk_dir)],
                                   [qemu_dir / "cortex_m_main.c"], chunk_dir, False)
        elf = link_image(chunk_dir / "harness.elf", support + harness + model_objects)
        lines, chunk_counts, note = _run_qemu(machine, elf, plugin, nm_tool)
        # QEMU prints semihosting output on stdout or stderr depending on how it is started.
        if "done" not in lines:
            raise KilomlError(f"{target}: the harness did not finish: {lines[-5:]}")
        logit_lines += [line.split(maxsplit=2)[2] for line in lines if line.startswith("l ")]
        measured += [int(line.split()[1]) for line in lines if line.startswith("stack ")]
        if note is not None:
            metrics["instructions_note"] = note
        counts = counts + chunk_counts if counts is not None and chunk_counts is not None \
            else None
    metrics["stack_bytes_measured"] = max(measured) if measured else None
    metrics["instructions_per_inference"] = None
    if counts is not None and len(counts) == len(inputs):
        metrics["instructions_per_inference"] = float(np.mean(counts))
        metrics["instructions_min_max"] = [min(counts), max(counts)]
        metrics["instructions_per_mac"] = (metrics["instructions_per_inference"]
                                           / info["macs_per_inference"])
    elif counts is not None:
        metrics["instructions_note"] = (f"plugin reported {len(counts)} inferences, expected "
                                        f"{len(inputs)}")
    return parse_logits("\n".join(logit_lines), q.num_classes), metrics


def verify_export(out_dir: Path, X_test: np.ndarray | None = None,
                  y_test: np.ndarray | None = None, float_model: torch.nn.Module | None = None,
                  targets: tuple[str, ...] = TARGETS) -> dict:
    """Compare the exported C with the integer simulator on every test input, per target.

    ``X_test`` (raw ``[N, T, F]``) and ``y_test`` default to ``out_dir/test_inputs.npz``.
    Per target the result has ``exact_match`` (fraction of inputs whose logits equal the
    simulator's exactly), ``accuracy``, ``float_accuracy``, ``flash_bytes``, ``ram_bytes``,
    ``macs_per_inference`` and, on Cortex-M, ``instructions_per_inference``; a target whose
    toolchain is missing gets ``status: "skipped"`` and the install command. Also writes
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
    q = load_quantized(out_dir / QUANTIZED_FILE)
    inputs, labels, floats = load_test_data(out_dir, q, X_test, y_test, float_model)
    simulated = simulate_batch(q, inputs)
    float_accuracy = float(np.mean(floats.argmax(1) == labels)) if floats is not None else None
    report = {"inputs": int(len(inputs)), "bits": q.bits, "model_kind": q.kind,
              "simulated_accuracy": float(np.mean(simulated.argmax(1) == labels)),
              "float_accuracy": float_accuracy, "targets": {}}
    build_root = out_dir / BUILD_DIR
    for target in targets:
        entry = {"macs_per_inference": info["macs_per_inference"],
                 "float_accuracy": float_accuracy}
        if target == "host":
            if missing_tools(("gcc",)):
                entry.update(status="skipped", reason="gcc not found")
            else:
                executable = build_host_harness(out_dir, build_root / "host")
                outputs = run_host(executable, inputs, q.num_classes)
                expected, used = simulated, labels
                entry.update(_host_metrics(out_dir, build_root / "host", info))
                entry["instructions_per_inference"] = None
        else:
            missing = missing_tools(CORTEX_M_TOOLS)
            if missing:
                entry.update(status="skipped", reason=f"{', '.join(missing)} not found; install "
                                                      f"with: {APT_INSTALL}")
                report["targets"][target] = entry
                continue
            outputs, metrics = run_cortex_m(out_dir, build_root / target, target, q, inputs,
                                            info)
            expected, used = simulated, labels
            entry.update(metrics)
        if entry.get("status") == "skipped":
            report["targets"][target] = entry
            continue
        exact = (outputs.shape == expected.shape) and bool(len(outputs))
        matches = np.all(outputs == expected, axis=1) if exact else np.zeros(len(expected), bool)
        entry.update(status="ok", inputs=int(len(expected)),
                     exact_match=float(np.mean(matches)),
                     accuracy=float(np.mean(outputs.argmax(1) == used)) if exact else None)
        report["targets"][target] = entry
    (out_dir / VERIFY_FILE).write_text(json.dumps(report, indent=2) + "\n")
    return report
