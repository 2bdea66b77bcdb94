"""Stack depth from GCC's call-graph files, including calls through a function pointer."""

import pytest

from kiloml.deploy.targets import worst_stack_bytes
from kiloml.errors import KilomlError


def _node(name: str, size: int) -> str:
    return f'node: {{ title: "{name}" label: "{name}\\nfile.c:1:1\\n{size} bytes (static)" }}\n'


def _edge(source: str, target: str) -> str:
    return f'edge: {{ sourcename: "{source}" targetname: "{target}" label: "file.c:2:3" }}\n'


@pytest.fixture
def callgraph(tmp_path):
    path = tmp_path / "lib.ci"
    path.write_text(_node("predict", 40) + _node("matvec", 16) + _node("small_kernel", 24)
                    + _node("big_kernel", 96) + _edge("predict", "matvec")
                    + _edge("matvec", "__indirect_call"))
    return path


def test_a_call_through_a_pointer_costs_the_deepest_named_target(callgraph):
    assert worst_stack_bytes([callgraph], "predict", ("small_kernel",)) == 40 + 16 + 24
    assert worst_stack_bytes([callgraph], "predict", ("small_kernel", "big_kernel")) == 152


def test_a_call_through_a_pointer_without_targets_is_an_error(callgraph):
    with pytest.raises(KilomlError, match="through a pointer"):
        worst_stack_bytes([callgraph], "predict")


def test_the_row_kernel_reaches_only_blocked_kernels_through_its_pointer(tmp_path):
    path = tmp_path / "lib.ci"
    path.write_text(_node("predict", 40) + _node("matvec", 16) + _node("kl_kernel_rows", 8)
                    + _node("kl_kernel_blocked_s8", 32) + _node("kl_kernel_dense_s16", 200)
                    + _edge("predict", "matvec") + _edge("matvec", "__indirect_call")
                    + _edge("kl_kernel_rows", "__indirect_call"))
    # no recursion through kl_kernel_rows, and its pointer never reaches the dense kernel
    targets = ("kl_kernel_rows", "kl_kernel_blocked_s8")
    assert worst_stack_bytes([path], "predict", targets) == 40 + 16 + 8 + 32
    assert worst_stack_bytes([path], "predict", ("kl_kernel_rows",)) == 40 + 16 + 8
    assert worst_stack_bytes([path], "predict", (*targets, "kl_kernel_dense_s16")) == 256
