"""Build and run ``kiloml_predict_pcm`` (raw PCM → label) of an audio export on the host and on
emulated Cortex-M, for comparison with :func:`kiloml.quantize.pcm_pipeline.simulate_pcm`.

The export directory holds the model, the library, ``kiloml_pcm.c/h`` and the front-end tables
for the run's sample rate (written by :func:`kiloml.deploy.export.export_run`). Host:
``harness/pcm_stdin.c`` (signals on stdin, class and logits on stdout). Cortex-M:
``qemu/pcm_main.c`` with the signals compiled in, built and run like :mod:`kiloml.deploy.verify`
builds models (same flags, startup code, linker script, QEMU machines), optionally counting the
instructions of every call.
"""

from pathlib import Path

import numpy as np

from kiloml.deploy.codegen import c_array, fill_template, library_dir
from kiloml.deploy.toolchain import (
    STRICT_CFLAGS,
    matrix_kernels,
    run,
    symbol_address,
    worst_stack_bytes,
)
from kiloml.deploy.verify import (
    MACHINES,
    MODEL_SOURCES,
    QEMU_TIMEOUT_SECONDS,
    build_instruction_counter,
)
from kiloml.errors import KilomlError

PCM_SOURCES = (*MODEL_SOURCES, "kiloml_logmel.c", "kiloml_pcm.c")
SANITIZE_FLAGS = ("-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all")
#: Signals compiled into one Cortex-M image (32 KB of flash per second at 16 kHz).
MAX_CORTEX_M_SIGNALS = 48


def _check_export(out_dir: Path) -> None:
    if not (out_dir / "kiloml_pcm.c").is_file():
        raise KilomlError(f"{out_dir}: no kiloml_pcm.c; export a run trained on audio (its "
                          "config.json has data.sample_rate)")


def build_host_pcm(out_dir: Path, build_dir: Path, flags: tuple[str, ...] = ("-O2",)) -> Path:
    """The host harness with the export's sources, strict flags plus ``flags``."""
    out_dir = Path(out_dir).resolve()
    _check_export(out_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    executable = build_dir / "pcm_host"
    sources = [str(out_dir / name) for name in PCM_SOURCES]
    run(["gcc", *STRICT_CFLAGS, *flags, "-I", str(out_dir), *sources,
         str(library_dir() / "harness" / "pcm_stdin.c"), "-o", str(executable)])
    return executable


def _parse(lines: list[str], num_classes: int, skip: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rows = [[int(v) for v in line.split()[skip:]] for line in lines if line.strip()]
    if any(len(row) != num_classes + 1 for row in rows):
        raise KilomlError(f"harness printed a line without a class and {num_classes} logits")
    values = np.array(rows, dtype=np.int64).reshape(len(rows), num_classes + 1)
    return values[:, 0], values[:, 1:]


def run_host_pcm(executable: Path, pcm: np.ndarray, num_classes: int,
                 poison: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(classes [N], logits [N, C])`` of the host harness for int16 signals ``pcm [N, n]``
    (class -1 and zero logits where the length is refused)."""
    pcm = np.ascontiguousarray(pcm, dtype="<i2")
    if pcm.ndim != 2:
        raise ValueError(f"expected int16 signals [N, n], got shape {list(pcm.shape)}")
    command = [str(executable), str(pcm.shape[1])] + ([str(poison)] if poison is not None
                                                       else [])
    result = run(command, stdin=pcm.tobytes())
    return _parse(result.stdout.decode().splitlines(), num_classes)


def run_cortex_m_pcm(out_dir: Path, build_dir: Path, target: str, pcm: np.ndarray,
                     num_classes: int, count_from: str | None = None) -> dict:
    """Run every int16 signal of ``pcm [N, n]`` through ``kiloml_predict_pcm`` on QEMU
    ``target`` (``cortex-m4``/``cortex-m3``). Returns ``classes [N]``, ``logits [N, C]``,
    ``stack_bytes`` (from the call graph), ``stack_bytes_measured`` and, with ``count_from``
    (``"kiloml_predict_pcm"``: front end + model; ``"kiloml_predict"``: the model only),
    ``instructions`` per call."""
    out_dir = Path(out_dir).resolve()
    _check_export(out_dir)
    pcm = np.asarray(pcm, dtype=np.int16)
    machine, cpu = MACHINES[target]
    build_dir.mkdir(parents=True, exist_ok=True)
    qemu_dir = library_dir() / "qemu"
    compiler, nm_tool = "arm-none-eabi-gcc", "arm-none-eabi-nm"
    flags = [f"-mcpu={cpu}", "-mthumb", "-O2", "-ffunction-sections", "-fdata-sections",
             "-I", str(out_dir), "-I", str(qemu_dir)]
    # The image links no C library: keep GCC from turning loops into memset/memcpy calls.
    no_memset = "-fno-tree-loop-distribute-patterns"

    def compile_one(source: Path, standard: list[str], where: Path) -> Path:
        obj = where / f"{source.stem}.o"
        run([compiler, *standard, *flags, no_memset, "-fcallgraph-info=su", "-c", str(source),
             "-o", str(obj)], cwd=where)
        return obj

    library = [compile_one(out_dir / name, list(STRICT_CFLAGS), build_dir)
               for name in PCM_SOURCES]
    support = [compile_one(qemu_dir / name, ["-std=gnu99"], build_dir)
               for name in ("semihosting.c", "startup.c")]
    stack = worst_stack_bytes([o.with_suffix(".ci") for o in library], "kiloml_predict_pcm",
                              matrix_kernels(out_dir / "model.c"))
    plugin = build_instruction_counter(build_dir) if count_from else None
    classes, logits, counts, measured = [], [], [], []
    for first in range(0, len(pcm), MAX_CORTEX_M_SIGNALS):
        chunk = pcm[first:first + MAX_CORTEX_M_SIGNALS]
        chunk_dir = build_dir / f"signals_{first // MAX_CORTEX_M_SIGNALS}"
        chunk_dir.mkdir(exist_ok=True)
        (chunk_dir / "pcm_inputs.h").write_text(fill_template("pcm_inputs.h.in", {
            "COUNT": len(chunk), "SAMPLES_PER_SIGNAL": chunk.shape[1],
            "SAMPLES": c_array("int16_t", "kl_pcm_samples", chunk)}, "qemu"))
        main = compile_one(qemu_dir / "pcm_main.c", ["-std=gnu99", "-Wall", "-Werror",
                                                     "-I", str(chunk_dir)], chunk_dir)
        elf = chunk_dir / "pcm.elf"
        run([compiler, f"-mcpu={cpu}", "-mthumb", "-nostdlib", "-T", str(qemu_dir / "mps2.ld"),
             "-Wl,--gc-sections", *map(str, support + library + [main]), "-lgcc", "-o",
             str(elf)])
        command = ["qemu-system-arm", "-machine", machine, "-nographic", "-monitor", "none",
                   "-serial", "none", "-semihosting-config", "enable=on,target=native",
                   "-kernel", str(elf)]
        if plugin is not None:
            start = symbol_address(nm_tool, elf, count_from)
            end = symbol_address(nm_tool, elf, "kiloml_bench_end")
            command += ["-d", "plugin", "-plugin", f"{plugin},start={start:#x},end={end:#x}"]
        result = run(command, timeout=QEMU_TIMEOUT_SECONDS)
        # QEMU prints semihosting output on stdout or stderr depending on how it is started.
        lines = (result.stdout + result.stderr).decode(errors="replace").splitlines()
        if "done" not in lines:
            raise KilomlError(f"{target}: the PCM harness did not finish: {lines[-5:]}")
        got_classes, got_logits = _parse([line for line in lines if line.startswith("l ")],
                                         num_classes, skip=2)
        classes.append(got_classes)
        logits.append(got_logits)
        measured += [int(line.split()[1]) for line in lines if line.startswith("stack ")]
        counts += [int(line.split()[1]) for line in lines if line.startswith("kiloml-insns ")]
    report = {"classes": np.concatenate(classes), "logits": np.concatenate(logits),
              "stack_bytes": stack, "stack_bytes_measured": max(measured, default=None)}
    if plugin is not None:
        if len(counts) != len(pcm):
            raise KilomlError(f"plugin reported {len(counts)} calls, expected {len(pcm)}")
        report["instructions"] = counts
    return report
