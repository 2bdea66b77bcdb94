"""``normalize``: the C kernel equals the spec for every shift class (the 32-bit common path
1..31, multiplying shifts <= 0 with and without saturation, shifts >= 32 that give 0), odd
widths and saturating inputs; the op's float forward and quantization rule. The shift sweep
runs the kernel once per shift in one program (a test op), in the shipped, sanitized and
instrumented host builds, which must reach every branch of ``kl_normalize.c`` and
``kl_normalize.h``."""

import numpy as np
import pytest

from kiloml.ir.calibrate import run_float
from kiloml.ir.simulate import simulate
from kiloml.ops.base import OPS, EmitContext, Emitted, Node, Op, Value
from kiloml.ops.fixed import QTensor
from kiloml.ops.matrix import c_array
from kiloml.ops.normalize import NORMALIZE_FILES, normalize_spec

from .kernel_coverage import branch_coverage, summary
from .op_harness import (
    BUILDS,
    SANITIZED,
    SWEEP_BUILDS,
    LibraryObjects,
    assert_c_equals_spec,
    quantize_node,
    single_op_graph,
)

SHIFTS = (-20, -15, -9, -1, 0, 1, 2, 14, 30, 31, 32, 33, 45)


def _extreme_inputs(frames: int, features: int, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (frames, features)
    fixed = [np.full(shape, -32768), np.full(shape, 32767), np.zeros(shape),
             np.where(np.indices(shape).sum(0) % 2 == 0, -32768, 32767)]
    return np.concatenate([np.stack(fixed), rng.integers(-32768, 32768, size=(count, *shape))
                           ]).astype(np.int16)


def _random_node(features: int, shift: int, seed: int) -> Node:
    rng = np.random.default_rng(seed)
    node = Node("norm", "normalize", ["x"], ["y"],
                weights={"mean": np.zeros(features), "std": np.ones(features)})
    node.q = {"mean": QTensor(rng.integers(-32768, 32768, features), 8, 16),
              "inv_std": QTensor(rng.integers(-32768, 32768, features), 12, 16)}
    node.consts = {"shift": shift}
    return node


class NormalizeProbeOp(Op):
    """Test op: ``kl_normalize_s16`` of the input once per shift of ``consts["shifts"]`` (one
    ``mean`` and ``inv_std``), the outputs one after the other."""

    name = "normalize_probe"
    c_files = NORMALIZE_FILES

    def infer(self, node, inputs):
        return [Value(node.outputs[0], (len(node.consts["shifts"]) * inputs[0].count,),
                      "int16")]

    def simulate(self, node, inputs, in_values, out_values):
        x = np.asarray(inputs[0]).reshape(len(inputs[0]), -1, in_values[0].shape[-1])
        return [np.concatenate([normalize_spec(x, node.q["mean"].values,
                                               node.q["inv_std"].values, shift)
                                .reshape(len(x), -1) for shift in node.consts["shifts"]],
                               axis=1)]

    def flash_bytes(self, node):
        return 0

    def macs(self, node, inputs, outputs):
        return 0

    def emit(self, node, inputs, outputs, c: EmitContext) -> Emitted:
        frames, features = inputs[0].shape
        definitions = (c_array("int16_t", c.symbol("mean"), node.q["mean"].values)
                       + c_array("int16_t", c.symbol("inv_std"), node.q["inv_std"].values))
        calls = ""
        for i, shift in enumerate(node.consts["shifts"]):
            params = c.symbol(f"params{i}")
            definitions += (f"static const kl_normalize_params_t {params} = "
                            f"{{ {c.symbol('mean')}, {c.symbol('inv_std')}, {features}, "
                            f"{shift} }};\n")
            calls += f"    kl_normalize_s16(&{params}, {frames}, x, y + {i * frames * features});\n"
        return Emitted(definitions, calls)


def test_c_equals_spec_for_every_shift_class_and_reaches_every_branch(tmp_path, monkeypatch,
                                                                      require_gcc):
    monkeypatch.setitem(OPS, NormalizeProbeOp.name, NormalizeProbeOp())
    node = _random_node(7, 0, seed=50)
    node.op, node.consts = NormalizeProbeOp.name, {"shifts": SHIFTS}
    graph = single_op_graph(node, (5, 7), input_frac_bits=8)
    graph.values["y"].frac_bits = 8
    library = LibraryObjects(tmp_path / "library")
    assert_c_equals_spec(graph, _extreme_inputs(5, 7, 12, seed=50), tmp_path,
                         SWEEP_BUILDS + SANITIZED, library=library)
    files = branch_coverage(library.coverage_objects())
    covered = ("kl_normalize.c", "kl_normalize.h")
    assert not any(files[name].untaken() for name in covered), summary(files, covered)


@pytest.mark.parametrize("features,shift", [(1, 1), (3, 1), (3, -15), (1, 32)])
def test_c_equals_spec_in_every_build(features, shift, tmp_path, require_gcc,
                                      require_cortex_m):
    graph = single_op_graph(_random_node(features, shift, seed=features), (5, features),
                            input_frac_bits=8)
    graph.values["y"].frac_bits = 8
    assert_c_equals_spec(graph, _extreme_inputs(5, features, 12, seed=features), tmp_path,
                         BUILDS)


def test_spec_is_the_equation_in_int64():
    x = np.array([[-32768, 32767, 5]])
    mean, inv_std = np.array([32767, -32768, 5]), np.array([-32768, -32768, 100])
    product = (x - mean) * inv_std  # exact in int64
    assert normalize_spec(x, mean, inv_std, 3).tolist() == np.clip(
        (product + 4) >> 3, -32768, 32767).tolist()
    assert normalize_spec(x, mean, inv_std, 40).tolist() == [[0, 0, 0]]
    assert normalize_spec(x, mean, inv_std, -2).tolist() == [[32767, -32768, 0]]


def test_quantized_op_follows_the_float_op():
    rng = np.random.default_rng(0)
    mean, std = rng.normal(size=4) * 10, rng.uniform(0.1, 30, size=4)
    X = rng.normal(size=(64, 6, 4)) * std + mean
    node = Node("norm", "normalize", ["x"], ["y"], weights={"mean": mean, "std": std})
    graph = single_op_graph(node, (6, 4), input_frac_bits=8)
    ranges = {}
    floats = run_float(graph, X, ranges)["y"]
    quantize_node(graph, ranges, 16)
    out_format = graph.values["y"].frac_bits
    assert abs(floats).max() * 1.25 * 2 ** out_format <= 32767
    x = np.clip(np.round(X * 2 ** 8), -32768, 32767).astype(np.int16)
    integer = simulate(graph, x) * 2.0 ** -out_format
    assert np.abs(integer - floats).max() < 0.01 * np.abs(floats).max()
