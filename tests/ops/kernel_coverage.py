"""Branch coverage of the C kernels from gcov's counters in the ``coverage`` builds.

A branch is one outgoing arc of a conditional as gcov lists it per source line (``if (a && b)``
has four: each condition true and false). The builds run at ``-O0`` without forced inlining
(``-DKL_COVERAGE``), so every copy of a header function has the same arcs and the counts of the
objects that include it add up arc by arc.

The op tests' sweeps each assert that they reach every branch of their kernel's files. The
figures of all the sweeps together, per file:

    mkdir -p build && .venv/bin/python -m pytest -q tests/ops -k reaches_every_branch \
        --basetemp=build/kernel-coverage
    .venv/bin/python -m tests.ops.kernel_coverage build/kernel-coverage
"""

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

#: The kernels' C files and the headers whose inline functions they run.
KERNEL_FILES = ("kl_fastgrnn.c", "kl_rnnpool.c", "kl_matvec.c", "kl_matvec.h", "kl_normalize.c",
                "kl_normalize.h", "kl_activation.c", "kl_activation.h", "kl_activation_layer.c",
                "kl_fc.c", "kl_argmax.h", "kl_fixed.h", "kl_conv2d.c", "kl_depthwise_conv2d.c",
                "kl_pointwise_conv2d.c", "kl_maxpool2d.c", "kl_window2d.h", "kl_requantize.h")


@dataclass
class FileCoverage:
    """Per line of one source file, the times each of its branches was taken."""

    lines: dict[int, list[int]] = field(default_factory=dict)

    @property
    def branches(self) -> int:
        return sum(len(counts) for counts in self.lines.values())

    @property
    def taken(self) -> int:
        return sum(count > 0 for counts in self.lines.values() for count in counts)

    def untaken(self) -> list[tuple[int, int]]:
        """``(line, branch index)`` of every branch never taken."""
        return [(line, i) for line, counts in sorted(self.lines.items())
                for i, count in enumerate(counts) if count == 0]


def branch_coverage(objects: list[Path]) -> dict[str, FileCoverage]:
    """Per source file name (``kl_matvec.c``, ``kl_fixed.h``, ...), the branch counts of
    ``objects`` (compiled with ``--coverage``, run any number of times) added up. Skips the
    test without ``gcov``, except in CI (CI=true), where it fails."""
    if shutil.which("gcov") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("gcov not found")
        pytest.skip("gcov not found")
    result = subprocess.run(["gcov", "--json-format", "--stdout", "--branch-probabilities",
                             *map(str, objects)], capture_output=True, check=True, text=True)
    files: dict[str, FileCoverage] = {}
    for report in result.stdout.splitlines():
        for entry in json.loads(report)["files"]:
            coverage = files.setdefault(Path(entry["file"]).name, FileCoverage())
            for line in entry["lines"]:
                counts = [branch["count"] for branch in line["branches"]]
                if not counts:
                    continue
                known = coverage.lines.setdefault(line["line_number"], [0] * len(counts))
                if len(known) != len(counts):
                    raise ValueError(f"{entry['file']}:{line['line_number']} has "
                                     f"{len(known)} branches in one object, {len(counts)} in "
                                     "another")
                coverage.lines[line["line_number"]] = [a + b for a, b in
                                                       zip(known, counts, strict=True)]
    return files


def summary(files: dict[str, FileCoverage], names: tuple[str, ...]) -> str:
    """One line per file: branches taken of all, and the lines of those never taken."""
    rows = []
    for name in names:
        coverage = files.get(name, FileCoverage())
        missed = sorted({line for line, _ in coverage.untaken()})
        rows.append(f"{name}: {coverage.taken}/{coverage.branches} branches taken"
                    + (f", never: lines {missed}" if missed else ""))
    return "\n".join(rows)


if __name__ == "__main__":
    objects = sorted(p.with_suffix(".o") for p in Path(sys.argv[1]).rglob("*.gcno"))
    if not objects:
        sys.exit(f"error: no coverage build under {sys.argv[1]}; run the sweeps with "
                 "--basetemp there first")
    print(summary(branch_coverage(objects), KERNEL_FILES))
