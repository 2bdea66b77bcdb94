"""Print each dataset's shapes, classes and split counts as a Markdown table (the numbers in
``docs/datasets.md``).

``python -m kiloml.data.summary [NAME ...] [--per-class]`` (default: every registered dataset;
ones that are not present are listed as missing).
"""

import argparse

import numpy as np

from kiloml.data.registry import DATASETS, load_dataset
from kiloml.data.splits import DatasetSplits
from kiloml.errors import KilomlError


def summary_row(data: DatasetSplits) -> str:
    """``| name | T x F | classes | train | val | test |``."""
    counts = " | ".join(f"{len(getattr(data, s)):,}" for s in ("train", "val", "test"))
    return (f"| {data.name} | {data.steps} x {data.num_features} | {data.num_classes} | "
            f"{counts} |")


def per_class_rows(data: DatasetSplits) -> list[str]:
    """``| class | train | val | test |`` for every class."""
    counts = {s: np.bincount(getattr(data, s).y, minlength=data.num_classes)
              for s in ("train", "val", "test")}
    return [f"| {name} | {counts['train'][c]} | {counts['val'][c]} | {counts['test'][c]} |"
            for c, name in enumerate(data.class_names)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kiloml.data.summary", description=__doc__)
    parser.add_argument("names", nargs="*", default=list(DATASETS))
    parser.add_argument("--per-class", action="store_true", help="also print counts per class")
    args = parser.parse_args(argv)
    print("| dataset | steps x features | classes | train | val | test |")
    print("|---|---|---|---|---|---|")
    loaded = []
    for name in args.names:
        try:
            data = load_dataset(name)
        except KilomlError as e:
            print(f"| {name} | missing: {e} | | | | |")
            continue
        print(summary_row(data))
        loaded.append(data)
    for data in loaded if args.per_class else []:
        print(f"\n{data.name}\n\n| class | train | val | test |\n|---|---|---|---|")
        print("\n".join(per_class_rows(data)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
