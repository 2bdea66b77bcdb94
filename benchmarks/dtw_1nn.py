"""1-nearest-neighbour classification under full-window dynamic time warping: the baseline of
the UCR/UEA archives, computed on the same ``.ts`` files kiloml reads.

    python benchmarks/dtw_1nn.py ItalyPowerDemand GunPoint    # accuracy on the official test

The distance between two series ``a [n, D]`` and ``b [m, D]`` is the smallest sum over a warping
path of ``|a_i - b_j|^2`` (all ``D`` channels warped together: "DTW_D" for multivariate data),
without a window constraint ("DTW (w=100)" in the UCR archive's tables). Series keep their own
lengths (no padding). Each test series takes the label of its nearest training series (ties: the
first in file order). The archive publishes these figures for its univariate sets; they are
recomputed here to check this implementation against them, and computed for the multivariate
sets (BasicMotions, JapaneseVowels).
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from kiloml.data.bad_files import BadFiles
from kiloml.data.ts_format import read_ts
from kiloml.data.uea import sktime_data_dir, ts_pair


def dtw_distances(query: np.ndarray, references: list[np.ndarray]) -> np.ndarray:
    """Full-window DTW distance ``[R]`` from ``query [n, D]`` to each of ``references`` (each
    ``[m_r, D]``), squared Euclidean cost per pair of steps. References of equal length are
    computed together, one anti-diagonal of the cost matrix at a time."""
    out = np.empty(len(references))
    by_length: dict[int, list[int]] = {}
    for index, ref in enumerate(references):
        by_length.setdefault(len(ref), []).append(index)
    n = len(query)
    for m, indices in by_length.items():
        refs = np.stack([references[i] for i in indices])              # [R, m, D]
        cost = ((query[None, :, None, :] - refs[:, None, :, :]) ** 2).sum(-1)  # [R, n, m]
        acc = np.full((len(indices), n + 1, m + 1), np.inf)
        acc[:, 0, 0] = 0.0
        for diagonal in range(2, n + m + 1):                            # i + j, 1-based
            i = np.arange(max(1, diagonal - m), min(n, diagonal - 1) + 1)
            j = diagonal - i
            best = np.minimum(np.minimum(acc[:, i - 1, j - 1], acc[:, i - 1, j]),
                              acc[:, i, j - 1])
            acc[:, i, j] = cost[:, i - 1, j - 1] + best
        out[indices] = acc[:, n, m]
    return out


def one_nn_accuracy(train: list[np.ndarray], train_labels: list[str], test: list[np.ndarray],
                    test_labels: list[str]) -> float:
    """Share of ``test`` whose nearest ``train`` series (full DTW) has the same label."""
    correct = 0
    for series, label in zip(test, test_labels, strict=True):
        nearest = int(np.argmin(dtw_distances(series, train)))
        correct += train_labels[nearest] == label
    return correct / len(test)


def dtw_accuracy(name: str, root: Path | None = None) -> float:
    """1-NN full-DTW test accuracy of the ``.ts`` problem ``name`` (in sktime's data folder
    unless ``root`` is given)."""
    root = root or sktime_data_dir()
    train_path, test_path = ts_pair(root / name / name)
    bad = BadFiles(False)
    train, test = read_ts(train_path, bad), read_ts(test_path, bad)
    return one_nn_accuracy(train.series, train.labels, test.series, test.labels)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="+", help="problem names in sktime's data folder")
    args = parser.parse_args()
    for name in args.names:
        started = time.perf_counter()
        accuracy = dtw_accuracy(name)
        print(f"{name}: 1-NN full DTW test accuracy {100 * accuracy:.2f}% "
              f"({time.perf_counter() - started:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
