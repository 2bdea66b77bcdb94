"""Recipes per kind of data, and frame stacking of long series."""

import math

import numpy as np
import pytest

from kiloml.data.splits import DatasetSplits, Split
from kiloml.train.recipes import SERIES_STEPS, choose_recipe, frame_stack_for


def _data(steps=12, features=3, **info):
    split = Split(np.zeros((4, steps, features), np.float32), np.array([0, 1, 0, 1]))
    return DatasetSplits("d", split, split, split, ["a", "b"], info=info)


def test_declared_sensor_axes_get_the_imu_recipe():
    recipe = choose_recipe(_data(128, 6, vector_channels=[[0, 1, 2], [3, 4, 5]]))
    assert recipe.kind == "imu" and recipe.augment_rotation == 15.0
    assert "0/1/2, 3/4/5" in recipe.reason
    assert recipe.frame_stack == 1  # the smartwatch windows stay one sample per step


def test_audio_image_and_series():
    audio = choose_recipe(_data(99, 32, sample_rate=16000))
    assert (audio.kind, audio.readout, audio.update_nonlinearity) == ("audio", "mean", "tanh")
    assert choose_recipe(_data(28, 28, kind="image")).kind == "image"
    series = choose_recipe(_data(24, 1))
    assert series.kind == "series" and series.augment_rotation == 0.0
    assert (series.augment_scale, series.augment_noise) == (0.0, 0.05)
    assert series.frame_stack == 1


def test_a_named_recipe_overrides_the_data():
    recipe = choose_recipe(_data(128, 6, vector_channels=[[0, 1, 2]]), "series")
    assert recipe.kind == "series" and recipe.augment_rotation == 0.0
    assert recipe.reason == "chosen with --recipe"


@pytest.mark.parametrize("steps,k,pad", [(24, 1, 0), (32, 1, 0), (150, 5, 0), (251, 8, 5),
                                         (427, 14, 7), (1460, 46, 12)])
def test_long_series_are_stacked_into_at_most_32_frames(steps, k, pad):
    assert frame_stack_for(steps, SERIES_STEPS)[:2] == (k, pad)
    assert (steps + pad) % k == 0 and (steps + pad) // k <= SERIES_STEPS
    assert k == 1 or math.ceil(steps / (k - 1)) > SERIES_STEPS  # k is the smallest


def test_padding_repeats_the_first_frame():
    data = _data(251, 1)
    data.train.x[:] = np.arange(251, dtype=np.float32)[None, :, None]
    recipe = choose_recipe(data)
    assert (recipe.frame_stack, recipe.pad_front) == (8, 5)
    padded = data.pad_front(256)
    assert padded.steps == 256 and padded.info["padded_from"] == 251
    np.testing.assert_array_equal(padded.train.x[0, :6, 0], [0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(padded.train.x[0, 5:, 0], np.arange(251))
