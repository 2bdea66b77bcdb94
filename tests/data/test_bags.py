"""EMI-RNN's bags: shapes, the steps each instance holds, and the one-line errors."""

import numpy as np
import pytest

from kiloml.data.bags import instance_count, make_bags
from kiloml.errors import KilomlError


def test_instances_are_the_windows_at_every_stride():
    x = np.arange(2 * 10 * 3).reshape(2, 10, 3)
    bags = make_bags(x, width=4, stride=3)
    assert bags.shape == (2, 3, 4, 3)  # starts 0, 3, 6; steps 9 is not read
    for i, start in enumerate((0, 3, 6)):
        assert np.array_equal(bags[:, i], x[:, start:start + 4])
    assert instance_count(128, 48, 16) == 6
    assert make_bags(x, 10, 7).shape == (2, 1, 10, 3)


def test_a_width_or_stride_that_does_not_fit_is_a_one_line_error():
    with pytest.raises(KilomlError, match="--instance-width 11 is longer than the 10-step"):
        make_bags(np.zeros((1, 10, 2)), 11, 1)
    with pytest.raises(KilomlError, match="must be positive, got 4 and 0"):
        instance_count(10, 4, 0)
