"""How the ten smartwatch subjects differ: per subject, the mean recording length and the 50th
and 90th percentiles of the accelerometer and gyroscope magnitudes over all its samples.

    python benchmarks/smartwatch_subjects.py     # a markdown table on stdout

Subjects who exercise faster make shorter recordings (each has the same exercises) with faster
rotations; this is what ``--train-speeds`` imitates (docs/benchmarks.md, "Smartwatch: exercise
pace").
"""

import argparse
import sys

import numpy as np

from kiloml.data.smartwatch import SUBJECTS, default_path


def subject_table(data: dict) -> list[dict]:
    """One row per subject: recordings, mean length (samples) and |a|, |ω| percentiles."""
    rows = []
    for subject in SUBJECTS:
        recordings = [np.asarray(x, dtype=np.float64)
                      for x, s in zip(data["X"], data["subject"], strict=True) if s == subject]
        samples = np.concatenate(recordings)
        acc, gyro = (np.linalg.norm(samples[:, c], axis=1) for c in (slice(0, 3), slice(3, 6)))
        rows.append({"subject": subject, "recordings": len(recordings),
                     "mean_length": float(np.mean([len(x) for x in recordings])),
                     "acc": np.percentile(acc, [50, 90]), "gyro": np.percentile(gyro, [50, 90])})
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| subject | recordings | mean length (samples at 50 Hz) | \\|a\\| median | "
             "\\|a\\| 90th pct | \\|ω\\| median | \\|ω\\| 90th pct |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['subject']} | {r['recordings']} | {r['mean_length']:,.0f} | "
                     f"{r['acc'][0]:.2f} | {r['acc'][1]:.2f} | {r['gyro'][0]:.2f} | "
                     f"{r['gyro'][1]:.2f} |")
    return "\n".join(lines)


def main() -> int:
    argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split())).parse_args()
    path = default_path()
    if path is None or not path.is_file():
        print("smartwatch_subjects: seglearn==1.2.5 is not installed (make setup installs it)",
              file=sys.stderr)
        return 2
    print(markdown(subject_table(np.load(path, allow_pickle=True).item())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
