"""``argmax``: the class ``kiloml_predict`` returns (``kl_argmax.h``) equals the spec
(``np.argmax``: the lowest index on ties) for ties, scores at the int32 limits, the largest
score first or last, one and two classes; the sweep's instrumented builds must reach every
branch of ``kl_argmax.h``. The scores come from a ``fully_connected`` head as in a classifier:
``score[j] = sat32(8 (16384 x[2j] + x[2j+1]))``, so an input pair sets any multiple of 8 and
saturates beyond."""

import numpy as np
import pytest

from kiloml.ir.graph import Graph
from kiloml.ir.simulate import simulate_values
from kiloml.ops.base import Node
from kiloml.ops.fixed import QTensor

from .kernel_coverage import branch_coverage, summary
from .op_harness import BUILDS, SWEEP_BUILDS, LibraryObjects, assert_c_equals_spec

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def head_and_argmax(classes: int) -> Graph:
    """Input int16 ``[2 * classes]`` → scores (the output) → the arg-max (returned)."""
    weight = np.zeros((classes, 2 * classes), dtype=np.int64)
    weight[np.arange(classes), 2 * np.arange(classes)] = 16384
    weight[np.arange(classes), 2 * np.arange(classes) + 1] = 1
    graph = Graph(meta={"kind": "argmax", "num_classes": classes, "bits": 16, "frame_stack": 1})
    graph.add_input("x", (2 * classes,))
    graph.values["x"].frac_bits = 0
    head = Node("head", "fully_connected", ["x"], ["scores"],
                weights={"weight": np.zeros(weight.shape), "bias": np.zeros(classes)})
    head.q = {"weight": QTensor(weight, 0, 16), "bias": QTensor(np.zeros(classes), 0, 16)}
    head.consts = {"shift_weight": -3, "shift_bias": 0}
    graph.add_node(head)
    graph.set_output("scores")
    graph.values["scores"].frac_bits = 0
    graph.add_node(Node("argmax", "argmax", ["scores"], ["class"]))
    return graph


def score_inputs(classes: int, seed: int) -> np.ndarray:
    """Inputs ``[N, 2 * classes]`` whose scores tie, reach the int32 limits, and put the
    largest score first, last and in between."""
    rng = np.random.default_rng(seed)
    high, low = [16384, 0], [-16385, 0]
    rows = [[0, 0] * classes, high * classes, low * classes,
            low * (classes - 1) + high, high + low * (classes - 1),
            [0, 5] * classes, [0, 5] + [0, 6] * (classes - 1),
            [0, 6] * (classes - 1) + [0, 7]]
    for _ in range(24):  # many ties: few distinct scores
        pairs = rng.integers(-1, 2, (classes, 2)) * [16384, 1]
        rows.append(pairs.reshape(-1).tolist())
    rows += rng.integers(-32768, 32768, (8, 2 * classes)).tolist()
    return np.array(rows, dtype=np.int16)


CLASSES = (1, 2, 7)


def test_c_equals_spec_over_the_sweep_and_reaches_every_branch(tmp_path, require_gcc):
    library = LibraryObjects(tmp_path / "library")
    for classes in CLASSES:
        graph = head_and_argmax(classes)
        inputs = score_inputs(classes, classes)
        values = simulate_values(graph, inputs)
        scores = values["scores"]
        assert {INT32_MIN, INT32_MAX} <= set(scores.reshape(-1).tolist())
        if classes > 1:
            assert set(values["class"].tolist()) >= {0, classes - 1}
            assert any(np.sum(row == row.max()) > 1 for row in scores)
        assert_c_equals_spec(graph, inputs, tmp_path / f"c{classes}", SWEEP_BUILDS,
                             library=library)
    files = branch_coverage(library.coverage_objects())
    assert not files["kl_argmax.h"].untaken(), summary(files, ("kl_argmax.h",))


def test_c_equals_spec_in_every_build(tmp_path, require_gcc, require_cortex_m):
    assert_c_equals_spec(head_and_argmax(7), score_inputs(7, 0), tmp_path, BUILDS)


@pytest.mark.parametrize("scores,expected", [
    ([[3, 3, 1]], [0]), ([[1, 3, 3]], [1]), ([[INT32_MIN, INT32_MIN]], [0]),
    ([[INT32_MIN, INT32_MAX, INT32_MAX]], [1]), ([[5]], [0]),
])
def test_spec_takes_the_lowest_index_on_ties(scores, expected):
    graph = Graph()
    graph.add_input("s", (len(scores[0]),), "int32")
    graph.add_node(Node("argmax", "argmax", ["s"], ["class"]))
    assert simulate_values(graph, np.array(scores))["class"].tolist() == expected
