"""Build and run the C log-mel front end on the host and on emulated Cortex-M, for comparison
with :func:`kiloml.quantize.logmel.log_mel_q10`.

The sources (``kiloml_logmel.c/h``, ``kiloml_fixed.h``) are copied into the build directory
next to a ``kiloml_logmel_tables.h`` generated for the requested configuration, so one library
serves every sample rate. Host: ``harness/logmel_stdin.c`` (signal on stdin, features on
stdout). Cortex-M: ``qemu/logmel_main.c`` with the signals compiled in, run like
:mod:`kiloml.deploy.verify` runs models (same flags, startup code, linker script and QEMU
machines), optionally counting the instructions of every ``kiloml_logmel`` call.
"""

import shutil
from pathlib import Path

import numpy as np

from kiloml.data.logmel import LogMelConfig
from kiloml.deploy.codegen import c_array, fill_template, library_dir
from kiloml.deploy.logmel_tables import write_logmel_tables
from kiloml.deploy.toolchain import STRICT_CFLAGS, run, symbol_address
from kiloml.deploy.verify import MACHINES, QEMU_TIMEOUT_SECONDS, build_instruction_counter
from kiloml.errors import KilomlError

LIBRARY_SOURCES = ("kiloml_logmel.c", "kiloml_logmel.h", "kiloml_fixed.h")
SANITIZE_FLAGS = ("-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all")


def prepare_sources(build_dir: Path, config: LogMelConfig | None = None) -> Path:
    """Copy the library into ``build_dir`` with tables for ``config``; returns ``build_dir``."""
    build_dir.mkdir(parents=True, exist_ok=True)
    for name in LIBRARY_SOURCES:
        shutil.copyfile(library_dir() / name, build_dir / name)
    write_logmel_tables(build_dir / "kiloml_logmel_tables.h", config)
    return build_dir


def build_host_logmel(build_dir: Path, config: LogMelConfig | None = None,
                      flags: tuple[str, ...] = ("-O2",)) -> Path:
    """The host harness compiled with ``gcc`` and the strict flags (plus ``flags``)."""
    prepare_sources(build_dir, config)
    executable = build_dir / "logmel_host"
    run(["gcc", *STRICT_CFLAGS, *flags, "-I", str(build_dir), str(build_dir / "kiloml_logmel.c"),
         str(library_dir() / "harness" / "logmel_stdin.c"), "-o", str(executable)])
    return executable


def parse_features(lines: list[str], n_mels: int) -> np.ndarray:
    """Rows of integers → int16 ``[frames, n_mels]``."""
    rows = [[int(v) for v in line.split()] for line in lines]
    if any(len(row) != n_mels for row in rows):
        raise KilomlError(f"expected {n_mels} features per line")
    return np.array(rows, dtype=np.int16).reshape(-1, n_mels)


def run_host_logmel(executable: Path, pcm: np.ndarray, n_mels: int = 32,
                    poison: int | None = None) -> np.ndarray:
    """Features ``[frames, n_mels]`` of int16 ``pcm`` computed by the host harness."""
    command = [str(executable)] + ([str(poison)] if poison is not None else [])
    result = run(command, stdin=np.ascontiguousarray(pcm, dtype="<i2").tobytes())
    return parse_features(result.stdout.decode().splitlines(), n_mels)


def _inputs_header(signals: list[np.ndarray], config: LogMelConfig) -> str:
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in signals])])
    return fill_template("logmel_inputs.h.in", {
        "COUNT": len(signals),
        "MAX_FRAMES": max(config.num_frames(len(s)) for s in signals),
        "OFFSETS": ", ".join(str(int(v)) for v in offsets),
        "SAMPLES": c_array("int16_t", "kl_logmel_samples", np.concatenate(signals))}, "qemu")


def run_cortex_m_logmel(build_dir: Path, target: str, signals: list[np.ndarray],
                        config: LogMelConfig | None = None, count_instructions: bool = False
                        ) -> tuple[list[np.ndarray], list[int] | None]:
    """Features of every int16 signal computed on QEMU ``target`` (``cortex-m4``/``-m3``), and
    the instructions executed by each ``kiloml_logmel`` call (``None`` unless requested)."""
    config = config or LogMelConfig()
    machine, cpu = MACHINES[target]
    prepare_sources(build_dir, config)
    qemu_dir = library_dir() / "qemu"
    (build_dir / "logmel_inputs.h").write_text(_inputs_header(signals, config))
    compiler = "arm-none-eabi-gcc"
    flags = [f"-mcpu={cpu}", "-mthumb", "-O2", "-ffunction-sections", "-fdata-sections",
             "-I", str(build_dir), "-I", str(qemu_dir)]
    objects = []
    # The image links no C library: keep GCC from turning the zeroing loops into memset.
    no_memset = "-fno-tree-loop-distribute-patterns"
    for source, standard in ((build_dir / "kiloml_logmel.c", [*STRICT_CFLAGS, no_memset]),
                             (qemu_dir / "logmel_main.c", ["-std=gnu99", "-Wall", "-Werror"]),
                             (qemu_dir / "semihosting.c", ["-std=gnu99"]),
                             (qemu_dir / "startup.c", ["-std=gnu99", no_memset])):
        obj = build_dir / f"{source.stem}.o"
        run([compiler, *standard, *flags, "-c", str(source), "-o", str(obj)])
        objects.append(str(obj))
    elf = build_dir / "logmel.elf"
    run([compiler, f"-mcpu={cpu}", "-mthumb", "-nostdlib", "-T", str(qemu_dir / "mps2.ld"),
         "-Wl,--gc-sections", *objects, "-lgcc", "-o", str(elf)])
    command = ["qemu-system-arm", "-machine", machine, "-nographic", "-monitor", "none",
               "-serial", "none", "-semihosting-config", "enable=on,target=native",
               "-kernel", str(elf)]
    if count_instructions:
        plugin = build_instruction_counter(build_dir)
        start = symbol_address("arm-none-eabi-nm", elf, "kiloml_logmel")
        end = symbol_address("arm-none-eabi-nm", elf, "kiloml_bench_end")
        command += ["-d", "plugin", "-plugin", f"{plugin},start={start:#x},end={end:#x}"]
    result = run(command, timeout=QEMU_TIMEOUT_SECONDS)
    # QEMU prints semihosting output on stdout or stderr depending on how it is started.
    lines = (result.stdout + result.stderr).decode(errors="replace").splitlines()
    if "done" not in lines:
        raise KilomlError(f"{target}: the log-mel harness did not finish: {lines[-5:]}")
    rows = [line.split() for line in lines if line.startswith("f ")]
    features = []
    for i in range(len(signals)):
        mine = [" ".join(row[3:]) for row in rows if int(row[1]) == i]
        features.append(parse_features(mine, config.n_mels))
    counts = None
    if count_instructions:
        counts = [int(line.split()[1]) for line in lines if line.startswith("kiloml-insns ")]
    return features, counts
