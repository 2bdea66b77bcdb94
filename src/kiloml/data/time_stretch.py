"""Replay a sensor recording faster or slower, as if the same motion were made at another pace.

People repeat the same exercise at different paces: on the smartwatch data some subjects' recordings
are half as long as others' for the same exercise, with faster rotations and harder accelerations.
Training windows cut from recordings replayed at a few speeds show a model those paces.
"""

import numpy as np

#: slowest and fastest replay speeds accepted
SPEED_RANGE = (0.5, 2.0)
#: samples of the moving average that separates gravity from an accelerometer's motion part
GRAVITY_WINDOW = 25


def moving_average(x: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average of ``x`` [T, C] over ``window`` (odd) samples, edges repeated."""
    half = window // 2
    padded = np.pad(x, ((half + 1, half), (0, 0)), mode="edge")
    sums = np.cumsum(padded, axis=0)
    return (sums[window:] - sums[:-window]) / window


def time_stretch(recording: np.ndarray, speed: float, rate_channels: tuple[int, ...] = (),
                 acceleration_channels: tuple[int, ...] = ()) -> np.ndarray:
    """``recording`` [T, C] replayed ``speed`` times faster: [floor((T - 1) / speed) + 1, C],
    float32.

    Samples are linearly interpolated at times ``0, speed, 2·speed, ...`` (in input samples).
    Channels in ``rate_channels`` (a gyroscope's) are multiplied by ``speed``: the same path
    covered ``speed`` times faster turns ``speed`` times faster. Channels in
    ``acceleration_channels`` (an accelerometer's) keep their slow part, the moving average over
    ``GRAVITY_WINDOW`` samples (mostly gravity), and multiply the rest, the motion's own
    acceleration, by ``speed²``. Other channels keep their values.
    """
    x = np.asarray(recording, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"expected a recording of shape [T >= 2, C], got {x.shape}")
    if not SPEED_RANGE[0] <= speed <= SPEED_RANGE[1]:
        raise ValueError(f"speed must lie in {SPEED_RANGE}, got {speed}")
    n = int(np.floor((len(x) - 1) / speed)) + 1
    t = np.arange(n) * speed
    source = np.arange(len(x))
    out = np.stack([np.interp(t, source, x[:, c]) for c in range(x.shape[1])], axis=1)
    if rate_channels:
        out[:, list(rate_channels)] *= speed
    out = out.astype(np.float32)
    if acceleration_channels:
        columns = list(acceleration_channels)
        acc = out[:, columns].astype(np.float64)
        slow = moving_average(acc, GRAVITY_WINDOW)
        out[:, columns] = slow + speed ** 2 * (acc - slow)
    return out
