"""The C library's kl_constants.h is generated from kiloml.ops.constants and up to date."""

from kiloml.ops.constants import ACTIVATION_IDS, c_header, header_path


def test_kl_constants_h_is_generated_from_the_python_constants():
    assert header_path().read_text() == c_header()


def test_activation_ids_are_distinct_and_dense():
    assert sorted(ACTIVATION_IDS.values()) == list(range(len(ACTIVATION_IDS)))
