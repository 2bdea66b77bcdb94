"""What the benchmark results record of the machine that made them.

Float training is bit-reproducible on one machine but can take another path on a CPU whose
kernels round differently (docs/benchmarks.md, "Reproducing the numbers"), so the CPU model is
part of the record.
"""

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def describe() -> str:
    """E.g. ``"x86_64, AMD EPYC, 2 cores"``."""
    return f"{platform.machine()}, {cpu_model()}, {os.cpu_count()} cores"
