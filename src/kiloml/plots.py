"""Plots written into a run directory: training history and the test confusion matrix.

Each PNG is written to a temporary sibling and renamed into place; names from the user's data
are shown as plain text (a ``$`` never starts math)."""

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from kiloml.outputs import TMP_SUFFIX  # noqa: E402

PHASE_COLORS = {"dense": "#e8f0fe", "iht": "#fde8e8", "sparse": "#e8f8ea"}
#: Largest side of the confusion matrix figure (inches) and most classes labelled on its axes.
MAX_FIGURE_INCHES = 16.0
MAX_LABELLED_CLASSES = 40


def _plain(text: str) -> str:
    """``text`` with dollar signs escaped, so matplotlib never reads it as math."""
    return str(text).replace("$", r"\$")


def _save(fig, path: Path) -> None:
    tmp = Path(path).with_name(Path(path).name + TMP_SUFFIX)
    fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    os.replace(tmp, path)


def plot_history(history: list[dict], path: Path, title: str) -> None:
    """Loss and accuracy per epoch (train and validation), phases shaded."""
    epochs = [r["epoch"] + 1 for r in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax in (ax_loss, ax_acc):
        start = 0
        for i, r in enumerate(history + [None]):
            if r is None or (i > 0 and r["phase"] != history[i - 1]["phase"]):
                phase = history[i - 1]["phase"]
                ax.axvspan(start + 0.5, i + 0.5, color=PHASE_COLORS.get(phase, "#eee"),
                           label=phase if ax is ax_acc else None)
                start = i
    ax_loss.plot(epochs, [r["train_loss"] for r in history], label="train")
    ax_loss.plot(epochs, [r["val_loss"] for r in history], label="validation")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax_acc.plot(epochs, [100 * r["train_accuracy"] for r in history], label="train")
    ax_acc.plot(epochs, [100 * r["val_accuracy"] for r in history], label="validation")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    ax_loss.legend(loc="upper right")
    ax_acc.legend(loc="lower right", fontsize=8)
    fig.suptitle(_plain(title))
    fig.tight_layout()
    _save(fig, path)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``[C, C]`` counts, rows are true classes."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def plot_confusion(matrix: np.ndarray, class_names: list[str], path: Path, title: str) -> None:
    """Row-normalised confusion matrix with counts in the cells."""
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = min(max(4.0, 0.5 * len(class_names) + 2), MAX_FIGURE_INCHES)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    if len(class_names) <= MAX_LABELLED_CLASSES:
        names = [_plain(n) for n in class_names]
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
        ax.set_yticks(range(len(names)), names)
    ax.set(xlabel="predicted", ylabel="true", title=_plain(title))
    if len(class_names) <= 20:
        for i in range(len(class_names)):
            for j in range(len(class_names)):
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if rates[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    _save(fig, path)


def plot_pareto(points: list[dict], front: list[dict], path: Path, title: str,
                instructions: bool = False) -> None:
    """Validation accuracy against deployed bytes of a sweep's trials (``bytes``,
    ``val_accuracy``, ``name``, ``feasible`` each), the front highlighted and joined by a
    staircase, trials over the device budget crossed out. With ``instructions``, a second
    panel puts the same trials against ``m4_instructions`` (Cortex-M4 instructions per
    inference); the front is then 3-D, so its points are highlighted in both panels and the
    staircase is left out (a 3-D front need not be a staircase in either projection)."""
    panels = [("bytes", "deployed bytes (log scale)")]
    if instructions:
        panels.append(("m4_instructions", "Cortex-M4 instructions per inference (log scale)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(7 * len(panels), 4.5), squeeze=False)
    for ax, (key, label) in zip(axes[0], panels, strict=True):
        _pareto_panel(ax, [p for p in points if key in p], [p for p in front if key in p], key,
                      label, staircase=not instructions)
    axes[0][0].set_ylabel("validation accuracy (%)")
    fig.suptitle(_plain(title), fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def _pareto_panel(ax, points: list[dict], front: list[dict], key: str, label: str,
                  staircase: bool) -> None:
    """One panel of :func:`plot_pareto`: validation accuracy against ``points[i][key]``."""
    ok = [p for p in points if p["feasible"]]
    over = [p for p in points if not p["feasible"]]
    ax.scatter([p[key] for p in ok], [100 * p["val_accuracy"] for p in ok], s=22,
               color="#9aa5b1", label="trial")
    if over:
        ax.scatter([p[key] for p in over], [100 * p["val_accuracy"] for p in over], s=22,
                   marker="x", color="#d98c8c", label="over the device budget")
    if front:
        ordered = sorted(front, key=lambda p: p[key])
        if staircase:
            ax.step([p[key] for p in ordered], [100 * p["val_accuracy"] for p in ordered],
                    where="post", color="#1f6feb", linewidth=1.2)
        ax.scatter([p[key] for p in ordered], [100 * p["val_accuracy"] for p in ordered],
                   s=46, color="#1f6feb", zorder=3, label="Pareto front")
        for p in ordered:
            ax.annotate(_plain(p["name"]), (p[key], 100 * p["val_accuracy"]), fontsize=7,
                        xytext=(4, -10), textcoords="offset points")
    ax.set_xscale("log")
    plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}")
    ax.xaxis.set_major_formatter(plain)
    if key == "bytes":  # instruction counts are too wide for labelled minor ticks
        ax.xaxis.set_minor_formatter(plain)
        ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel(label)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
