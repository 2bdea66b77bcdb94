"""Whether a model learned anything: its validation accuracy against guessing.

Two ways to score without learning: picking a class at random (``1 / C``) and always answering
the most common class of the held-out sequences. A validation accuracy less than
``MARGIN`` above the better of the two means the model has learned little or nothing, however
normal the rest of the summary looks.
"""

import math

import numpy as np

MARGIN = 0.05

SUGGESTIONS = ("more optimizer steps (--epochs) or smaller batches (--batch-size)",
               "a larger model (--hidden-size, --u-rank full, --sparsity-w 1 --sparsity-u 1)",
               "the mean state as readout (--readout mean) or a tanh update "
               "(--update-nonlinearity tanh)",
               "for long sequences, more samples per step (--frame-stack K)",
               "checking that the labels belong to the sequences")
#: for the vision families (images), whose options differ
IMAGE_SUGGESTIONS = ("more optimizer steps (--epochs) or smaller batches (--batch-size)",
                     "a wider model (--width-mult)", "a lower or higher --lr",
                     "checking that the labels belong to the images")


def chance_levels(labels: np.ndarray, num_classes: int) -> tuple[float, float]:
    """``(1 / num_classes, share of the most common class in labels)``."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)
    return 1.0 / num_classes, float(counts.max() / max(counts.sum(), 1))


def chance_warning(accuracy: float, labels: np.ndarray, num_classes: int,
                   margin: float = MARGIN, images: bool = False) -> dict:
    """``metrics.json`` fields: both chance levels, and ``warning`` (text, or ``None``) when
    ``accuracy`` on the held-out ``labels`` is less than ``margin`` above the better one (the
    suggestions of a vision model's options with ``images``)."""
    uniform, majority = chance_levels(labels, num_classes)
    fields = {"chance_accuracy": uniform, "majority_accuracy": majority, "warning": None}
    if not math.isfinite(accuracy):
        return fields
    baseline, name = max((uniform, "guessing a class at random"),
                         (majority, "always answering the most common class"))
    if accuracy < baseline + margin:
        fields["warning"] = (
            f"validation accuracy {100 * accuracy:.1f}% is within {100 * margin:.0f} points of "
            f"{name} ({100 * baseline:.1f}%): the model has learned little or nothing. "
            "Try: " + "; ".join(IMAGE_SUGGESTIONS if images else SUGGESTIONS) + ".")
    return fields
