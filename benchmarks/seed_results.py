"""Results saved one file per seed, and their mean ± std, shared by the benchmarks that run
several seeds (``vision_models.py``, ``vision_int8.py``, ``edgeml_protonn_bonsai.py``)."""

import json
import statistics
from pathlib import Path


def seed_files(out: Path, stem: str) -> dict[int, dict]:
    """``{seed: results}`` of the files ``OUT/STEM_seed{N}.json``, by seed."""
    found = {}
    for path in out.glob(f"{stem}_seed*.json"):
        suffix = path.stem.removeprefix(f"{stem}_seed")
        if suffix.isdigit():
            found[int(suffix)] = json.loads(path.read_text())
    return dict(sorted(found.items()))


def mean_std(values: list[float]) -> str:
    """``mean ± std`` in percent of fractions (sample standard deviation, n − 1; the value
    alone for one seed)."""
    mean = 100 * statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:.2f} %"
    return f"{mean:.2f} ± {100 * statistics.stdev(values):.2f} %"
