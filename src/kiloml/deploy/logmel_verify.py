"""Build and run the C log-mel front end on any target, for comparison with
:func:`kiloml.ops.logmel.log_mel_q10`.

The sources (``kiloml_logmel.c/h``, ``kl_fixed.h``) are copied into the build directory next to
a ``kiloml_logmel_tables.h`` generated for the requested configuration, so one library serves
every sample rate; ``harness/logmel_main.c`` runs ``kiloml_logmel`` on every signal through
:mod:`kiloml.deploy.targets`, like every other verification program.
"""

import shutil
from pathlib import Path

import numpy as np

from kiloml.data.logmel import LogMelConfig
from kiloml.deploy.codegen import library_dir, library_file
from kiloml.deploy.logmel_tables import write_logmel_tables
from kiloml.deploy.targets import Build, get_target, run_records
from kiloml.errors import KilomlError

LIBRARY_SOURCES = ("kiloml_logmel.c", "kiloml_logmel.h", "kl_fixed.h", "kl_flash.h")


def logmel_build(build_dir: Path, target: str, config: LogMelConfig | None = None,
                 variant: str = "fast", max_frames: int = 128) -> Build:
    """The front end for ``config`` compiled for ``target`` (``variant``: fast, reference,
    sanitize), with room for signals of up to ``max_frames`` frames."""
    source_dir = build_dir / "src"
    source_dir.mkdir(parents=True, exist_ok=True)
    for name in LIBRARY_SOURCES:
        shutil.copyfile(library_file(name), source_dir / name)
    write_logmel_tables(source_dir / "kiloml_logmel_tables.h", config)
    return Build(get_target(target), [source_dir / "kiloml_logmel.c"], [source_dir], build_dir,
                 variant, (f"KL_LOGMEL_MAX_FRAMES={max_frames}",)).compile()


def run_logmel(build: Build, signals: list[np.ndarray], n_mels: int = 32,
               poison: int | None = None, count_instructions: bool = False
               ) -> tuple[list[np.ndarray], list[int] | None]:
    """Features ``[frames, n_mels]`` of every int16 signal, and on Cortex-M (when asked) the
    instructions each ``kiloml_logmel`` call executed."""
    records = [np.ascontiguousarray(x, dtype="<i2").tobytes() for x in signals]
    output = run_records(build, library_dir() / "harness" / "logmel_main.c", records, poison,
                         "kiloml_logmel" if count_instructions else None)
    frames: dict[int, list[list[int]]] = {i: [] for i in range(len(signals))}
    for line in output.lines:
        if line.startswith("f "):
            values = [int(v) for v in line.split()[1:]]
            if len(values) != n_mels + 2:
                raise KilomlError(f"expected {n_mels} features per line")
            frames[values[0]].append(values[2:])
    features = [np.array(rows, dtype=np.int16).reshape(-1, n_mels) for _, rows in
                sorted(frames.items())]
    return features, output.instructions
