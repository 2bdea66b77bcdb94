import numpy as np

from kiloml.ops.fixed import frac_bits_for, saturate, shift_round, to_fixed


def test_shift_round_rounds_half_up_and_shifts_left_exactly():
    x = np.array([-6, -5, -3, -2, -1, 0, 1, 2, 3, 5, 6])
    assert shift_round(x, 1).tolist() == [-3, -2, -1, -1, 0, 0, 1, 1, 2, 3, 3]
    assert shift_round(x, 2).tolist() == [-1, -1, -1, 0, 0, 0, 0, 1, 1, 1, 2]
    assert shift_round(x, 0).tolist() == x.tolist()
    assert shift_round(x, -3).tolist() == (x * 8).tolist()


def test_saturate_clamps_to_int16_and_int32_limits():
    x = np.array([-(1 << 40), -32769, -32768, 0, 32767, 32768, 1 << 40])
    assert saturate(x, 16).tolist() == [-32768, -32768, -32768, 0, 32767, 32767, 32767]
    assert saturate(x, 32).tolist() == [-(1 << 31), -32769, -32768, 0, 32767, 32768,
                                        (1 << 31) - 1]


def test_frac_bits_for_uses_the_whole_range_without_overflow():
    assert frac_bits_for(1.0, 16) == 14
    assert frac_bits_for(0.99, 16) == 15
    assert frac_bits_for(0.0, 16, highest=20) == 20
    for max_abs in (0.013, 0.5, 1.7, 37.0, 1000.0):
        for bits in (8, 16):
            f = frac_bits_for(max_abs, bits)
            limit = (1 << (bits - 1)) - 1
            assert round(max_abs * 2.0**f) <= limit < round(max_abs * 2.0 ** (f + 1))


def test_to_fixed_is_symmetric_and_saturates():
    q = to_fixed(np.array([-2.0, -1.0, -0.5, 0.5, 1.0, 2.0]), 7, 8)
    assert q.tolist() == [-127, -127, -64, 64, 127, 127]
