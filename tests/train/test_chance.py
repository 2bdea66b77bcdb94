"""The chance-level warning: validation accuracy against guessing and the majority class."""

import math

import numpy as np

from kiloml.train.chance import chance_levels, chance_warning


def test_chance_levels():
    assert chance_levels(np.array([0, 1, 1, 1]), 4) == (0.25, 0.75)


def test_warns_near_random_guessing():
    labels = np.array([0, 1, 2] * 10)
    fields = chance_warning(0.36, labels, 3)
    assert "36.0%" in fields["warning"] and "random (33.3%)" in fields["warning"]
    assert "--epochs" in fields["warning"]  # says what to try
    assert chance_warning(0.40, labels, 3)["warning"] is None


def test_warns_near_always_answering_the_majority_class():
    labels = np.array([0] * 8 + [1] * 2)
    fields = chance_warning(0.82, labels, 2)
    assert fields["majority_accuracy"] == 0.8
    assert "most common class (80.0%)" in fields["warning"]
    assert chance_warning(0.9, labels, 2)["warning"] is None


def test_below_chance_warns_and_nan_does_not():
    labels = np.array([0, 1] * 5)
    assert chance_warning(0.1, labels, 2)["warning"] is not None
    assert chance_warning(math.nan, labels, 2)["warning"] is None


def test_the_warning_of_a_vision_model_suggests_its_own_options():
    labels = np.array([0, 1] * 10)
    text = chance_warning(0.5, labels, 2, images=True)["warning"]
    assert "--width-mult" in text and "--hidden-size" not in text
    assert "--hidden-size" in chance_warning(0.5, labels, 2)["warning"]
