"""The C library's kl_constants.h is generated from kiloml.ops.constants and up to date."""

from kiloml.ops.constants import ACTIVATION_IDS, c_header, header_path


def test_kl_constants_h_is_generated_from_the_python_constants():
    assert header_path().read_text() == c_header()


def test_activation_ids_are_distinct_and_dense():
    assert sorted(ACTIVATION_IDS.values()) == list(range(len(ACTIVATION_IDS)))


def test_the_size_accounting_uses_the_kernels_limits():
    from kiloml.compress import kernel_cost, size
    from kiloml.ops import constants, matrix

    assert size.BLOCK == constants.BLOCK_WIDTH
    assert size.BLOCKED_MAX_COLS == constants.BLOCKED_MAX_COLS
    assert size.INT8_ROW_LIMIT == constants.INT8_ROW_LIMIT
    assert kernel_cost.NARROW_COLS == constants.NARROW_COLS
    assert kernel_cost.NARROW_S16_MIN_COLS == matrix.NARROW_S16_MIN_COLS
