"""Training recipes per kind of data: what ``kiloml train`` does when the user does not say.

The kind comes from what the loader knows about the data:

- ``imu``: the data declares 3-axis sensor channels (``info["vector_channels"]``: the smartwatch
  accelerometer and gyroscope, BasicMotions, or a ``.npz`` with ``vector_channels``). Training
  rotates each 3-axis group by a random 3-D rotation and applies a per-channel gain and noise,
  as if the sensor sat differently on another person. This is the recipe ``make demo`` was
  tuned with (docs/benchmarks.md).
- ``audio``: log-mel frames from a WAV loader (``info["sample_rate"]``). FastGRNN/FastRNN read out
  the mean state over time with a tanh candidate, which beat the last state with relu by 3-7
  points on speech and spoken digits (docs/benchmarks.md#choosing-the-audio-recipe).
- ``image``: images read row by row or pixel by pixel (``info["kind"] == "image"``) by a
  sequence model; the rows are read as they are, one per step.
- ``vision``: images (``info["image_shape"]``) for a vision model (``mobilenetv2``,
  ``rnnpool-mobilenetv2``): a random crop after zero padding by an eighth of the side (4 pixels
  at 32×32, 12 at 96×96) and a random horizontal flip, the usual CIFAR recipe; no gain or noise.
- ``vector``: feature vectors (``info["input"] == "vector"``: ``mnist``, ``mnist-2``,
  ``fashion-mnist``, a ``.npz`` with 2-D ``X``), for ProtoNN: no augmentation, as in the
  ProtoNN paper.
- ``series``: anything else: sensor or measurement series of one or a few channels, of unknown
  meaning. Gaussian noise only (0.05 of each channel's standard deviation): no rotation (the
  channels are not known to be axes of one vector) and no gain (a gain can change the class:
  an appliance's power level is what tells it apart). Chosen by 5-fold cross-validation on the
  training files only (docs/benchmarks.md#series-recipe).

Long sequences (``series`` longer than ``SERIES_STEPS``, ``imu`` longer than ``IMU_STEPS``) are
read in frames of ``K`` consecutive samples (``--frame-stack K``), ``K`` the smallest that
leaves at most that many recurrent steps; a length that is not a multiple of ``K`` is padded in
front by repeating the first sample (fewer than ``K`` samples; the deployed model then takes the
padded length). Fewer, wider steps train faster and remember over fewer steps.
"""

import math
from dataclasses import asdict, dataclass, replace

from kiloml.data.splits import DatasetSplits

SERIES_STEPS = 32  # series: at most this many recurrent steps
IMU_STEPS = 128    # imu: the smartwatch windows (128 samples) stay one sample per step


@dataclass(frozen=True)
class Recipe:
    """Defaults for one kind of data; every field has a command-line option that overrides it."""

    kind: str
    reason: str
    augment_scale: float
    augment_noise: float
    augment_rotation: float
    readout: str = "last"
    update_nonlinearity: str = "relu"
    frame_stack: int = 1
    pad_front: int = 0
    augment_crop: int = 0
    augment_flip: bool = False
    frame_stack_reason: str = ""

    def describe(self) -> str:
        return f"recipe {self.kind}: {self.reason}"

    def to_dict(self) -> dict:
        return asdict(self)


IMU = Recipe("imu", "", augment_scale=0.1, augment_noise=0.05, augment_rotation=15.0)
AUDIO = Recipe("audio", "", augment_scale=0.1, augment_noise=0.05, augment_rotation=0.0,
               readout="mean", update_nonlinearity="tanh")
IMAGE = Recipe("image", "", augment_scale=0.1, augment_noise=0.05, augment_rotation=0.0)
SERIES = Recipe("series", "", augment_scale=0.0, augment_noise=0.05, augment_rotation=0.0)
VECTOR = Recipe("vector", "", augment_scale=0.0, augment_noise=0.0, augment_rotation=0.0)
VISION = Recipe("vision", "", augment_scale=0.0, augment_noise=0.0, augment_rotation=0.0,
                augment_flip=True)


def frame_stack_for(steps: int, max_steps: int) -> tuple[int, int, str]:
    """``(K, pad, why)``: the smallest ``K`` with at most ``max_steps`` frames of ``K``
    samples, and the ``pad`` samples to repeat in front to make the length a multiple of K."""
    if steps <= max_steps:
        return 1, 0, f"{steps} steps, one sample per step"
    k = math.ceil(steps / max_steps)
    frames = math.ceil(steps / k)
    pad = frames * k - steps
    padded = (f", after repeating the first sample {pad} times in front ({steps} → "
              f"{frames * k} steps)" if pad else "")
    return k, pad, (f"{steps} steps read as {frames} frames of {k} samples (--frame-stack "
                    f"{k}: at most {max_steps} recurrent steps){padded}")


RECIPES = {r.kind: r for r in (IMU, AUDIO, IMAGE, SERIES, VECTOR, VISION)}


def vision_recipe(data: DatasetSplits, reason: str = "") -> Recipe:
    """Crop padding of an eighth of the image's smaller side, and flips."""
    shape = data.info.get("image_shape") or [0, 0, 0]
    pad = min(shape[1:]) // 8
    return replace(VISION, augment_crop=pad, reason=reason or (
        f"{shape[1]}x{shape[2]} images for a CNN: random crop after padding by {pad} black "
        "pixels, random horizontal flip, no gain or noise"))


def choose_recipe(data: DatasetSplits, kind: str | None = None,
                  model_input: str = "sequence") -> Recipe:
    """The recipe for ``data`` read by a model taking ``model_input`` (a family's
    ``input_kind``), or the one named ``kind``, with the reason in words."""
    info = data.info
    groups = info.get("vector_channels") or []
    if kind == "vision" or (kind is None and model_input == "image"):
        return vision_recipe(data, "chosen with --recipe" if kind else "")
    if kind is not None:
        recipe = replace(RECIPES[kind], reason="chosen with --recipe")
        if kind in ("audio", "image", "vector"):
            return recipe
    elif info.get("input") == "vector":
        return replace(VECTOR, reason=f"feature vectors of {data.num_features} values: no "
                                      "augmentation")
    elif groups:
        axes = ", ".join("/".join(str(c) for c in g) for g in groups)
        recipe = replace(IMU, reason=f"3-axis sensor channels {axes}: rotation, gain and noise")
    elif "sample_rate" in info:
        return replace(AUDIO, reason=f"log-mel frames of {info['sample_rate']} Hz audio: mean "
                                     "readout, tanh candidate, gain and noise")
    elif info.get("kind") == "image":
        return replace(IMAGE, reason="image rows as steps: gain and noise, no rotation")
    else:
        recipe = replace(SERIES, reason=f"{data.num_features}-channel series without declared "
                                        "sensor axes: noise, no gain, no rotation")
    k, pad, why = frame_stack_for(data.steps, IMU_STEPS if recipe.kind == "imu" else SERIES_STEPS)
    return replace(recipe, frame_stack=k, pad_front=pad, frame_stack_reason=why)
