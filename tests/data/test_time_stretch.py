import numpy as np
import pytest

from kiloml.data.time_stretch import moving_average, time_stretch


def test_speed_one_is_the_recording():
    x = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    np.testing.assert_array_equal(time_stretch(x, 1.0, (2, 3)), x)


def test_a_ramp_replayed_faster_is_a_steeper_ramp_and_rates_scale():
    t = np.arange(101, dtype=np.float32)
    x = np.stack([t, 2 * t + 1, np.full_like(t, 3.0)], axis=1)  # [101, 3]
    fast = time_stretch(x, 1.25, rate_channels=(2,))
    assert fast.shape == (81, 3) and fast.dtype == np.float32  # times 0, 1.25, ..., 100
    np.testing.assert_allclose(fast[:, 0], 1.25 * np.arange(81), rtol=1e-6)
    np.testing.assert_allclose(fast[:, 1], 2.5 * np.arange(81) + 1, rtol=1e-6)
    np.testing.assert_allclose(fast[:, 2], 3.75)  # a rate channel: 1.25x the turning speed
    slow = time_stretch(x, 0.5)
    assert slow.shape == (201, 3)
    np.testing.assert_allclose(slow[:, 0], 0.5 * np.arange(201), rtol=1e-6)
    np.testing.assert_allclose(slow[:, 2], 3.0)


@pytest.mark.parametrize("speed", [0.49, 2.01, float("nan")])
def test_speeds_out_of_range_are_refused(speed):
    with pytest.raises(ValueError, match="speed must lie in"):
        time_stretch(np.zeros((10, 2)), speed)


def test_a_recording_must_be_two_dimensional():
    with pytest.raises(ValueError, match="expected a recording"):
        time_stretch(np.zeros(10), 1.0)


def test_moving_average_matches_scipy():
    uniform_filter1d = pytest.importorskip("scipy.ndimage").uniform_filter1d
    for n in (5, 40, 300):
        x = np.random.default_rng(n).normal(size=(n, 3))
        np.testing.assert_allclose(moving_average(x, 25),
                                   uniform_filter1d(x, 25, axis=0, mode="nearest"), atol=1e-12)


def test_acceleration_keeps_gravity_and_scales_motion_by_speed_squared():
    t = np.arange(400)
    gravity, motion = 1.0, 0.5 * np.sin(2 * np.pi * t / 50)  # a period of 50 samples
    x = np.stack([gravity + motion, np.full(400, 2.0)], axis=1)
    fast = time_stretch(x, 2.0, acceleration_channels=(0, 1))
    # replayed twice as fast the period is 25 samples, one gravity window: its average is 1
    inner = slice(20, 180)
    expected = gravity + 4 * 0.5 * np.sin(2 * np.pi * np.arange(200) / 25)
    np.testing.assert_allclose(fast[inner, 0], expected[inner], atol=1e-5)
    np.testing.assert_allclose(fast[:, 1], 2.0, rtol=1e-6)  # constant: gravity only
    np.testing.assert_allclose(time_stretch(x, 1.0, acceleration_channels=(0,)), x, atol=1e-6)
