"""Replay a sensor recording faster or slower, as if the same motion were made at another pace.

People repeat the same exercise at different paces: on the smartwatch data some subjects' recordings
are half as long as others' for the same exercise, with faster rotations. Training windows cut from
recordings replayed at a few speeds show a model those paces.
"""

import numpy as np

#: slowest and fastest replay speeds accepted
SPEED_RANGE = (0.5, 2.0)


def time_stretch(recording: np.ndarray, speed: float,
                 rate_channels: tuple[int, ...] = ()) -> np.ndarray:
    """``recording`` [T, C] replayed ``speed`` times faster: [floor(T / speed), C], float32.

    Samples are linearly interpolated at times ``0, speed, 2·speed, ...`` (in input samples).
    Channels in ``rate_channels`` (such as a gyroscope's, in units per second) are multiplied by
    ``speed``: the same path covered ``speed`` times faster turns ``speed`` times faster. Other
    channels keep their values (an accelerometer's reading is mostly gravity at these paces).
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
    return out.astype(np.float32)
