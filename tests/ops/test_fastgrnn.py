"""``fastrnn``: the C kernel (``kl_fastgrnn.c``) equals the spec for both cells, every gate and
update activation, both readouts, full and low-rank ``W``/``U`` in every storage (dense int16,
narrow and interleaved int8, CSR), odd widths and saturating inputs and weights; and for
parameters the quantizer does not produce but the kernel accepts, so that every condition of
the fast state update's plan (``kl_plan_update``) rejects it once and the reference update
runs in the fast build. The sweep runs on the host (the shipped build and the instrumented
fast and reference builds, whose branch counts must reach every branch of ``kl_fastgrnn.c``);
a few cases run in every build of the harness. Also the op's float forward against the torch
layers and its quantization rule."""

import math

import numpy as np
import pytest
import torch

from kiloml.ir.calibrate import run_float
from kiloml.ir.graph import Graph
from kiloml.ir.lower import lower
from kiloml.ir.quantize import quantize_graph, quantize_input
from kiloml.ir.simulate import simulate
from kiloml.nn.fastrnn import FastGRNN, FastRNN
from kiloml.ops import fastgrnn as fastgrnn_ops
from kiloml.ops.activation import output_frac_bits
from kiloml.ops.base import Node
from kiloml.ops.constants import ACTIVATION_IDS, INV_STEPS_FRAC_BITS
from kiloml.ops.fastgrnn import MATRICES
from kiloml.ops.fixed import Q15, QTensor, shift_round
from kiloml.ops.matrix import emit_matrix

from .kernel_coverage import branch_coverage, summary
from .op_harness import (
    BUILDS,
    SANITIZED,
    SWEEP_BUILDS,
    LibraryObjects,
    assert_c_equals_spec,
    extreme_inputs,
    run_c,
    single_op_graph,
)

KINDS = tuple(ACTIVATION_IDS)


def fastrnn_node(seed: int, steps: int, cell: str = "fastgrnn", gate: str = "sigmoid",
                 update: str = "relu", readout: str = "last", bits: int = 16,
                 features: int = 5, hidden: int = 7, w_rank: int | None = None,
                 u_rank: int | None = None, density: float = 1.0, gain: int = 0,
                 preact: int | None = None, state: int | None = None,
                 bias_bits: tuple[int, int] | None = None, coefs: tuple[int, int] | None = None,
                 consts: dict[str, int] | None = None) -> Node:
    """A quantized ``fastrnn`` node with random integer tensors over their whole range
    (``density`` of the matrix entries nonzero). Shifts and Q-formats follow the quantizer's
    rule from drawn (or given) preactivation and state formats; each matrix shift brings a
    typical row sum to the int16 range, ``gain`` bits lower to saturate. ``bias_bits`` are the
    widths of (bias_gate, bias_update), ``coefs`` the Q15 (coef_a, coef_b); ``consts``
    overrides any constant last."""
    rng = np.random.default_rng(seed)
    fastgrnn = cell == "fastgrnn"
    node = Node("rnn", "fastrnn", ["x"], ["h"],
                {"cell": cell, "gate": gate if fastgrnn else "", "update": update,
                 "readout": readout},
                {"input_mean": np.zeros(features), "input_std": np.ones(features),
                 "bias_update": np.zeros(hidden)})
    q, k = node.q, {}
    q["input_mean"] = QTensor(rng.integers(-16384, 16384, features), 8, 16)
    q["input_inv_std"] = QTensor(rng.integers(-32768, 32768, features), 12, 16)
    k["shift_normalize"] = int(rng.integers(13, 17))
    shapes = {}
    for name, cols, rank in (("W", features, w_rank), ("U", hidden, u_rank)):
        if rank is None:
            shapes[name] = (hidden, cols)
        else:
            shapes[f"{name}1"], shapes[f"{name}2"] = (rank, cols), (hidden, rank)
    low, high = -(1 << (bits - 1)), 1 << (bits - 1)
    for name, (rows, cols) in shapes.items():
        values = rng.integers(low, high, (rows, cols)) * (rng.random((rows, cols)) < density)
        q[name] = QTensor(values, 0, bits)
        k[f"shift_{name}"] = (bits - 1 + round(math.log2(cols) / 2) + int(rng.integers(-1, 2))
                              - gain)
    gate_bits, update_bits = bias_bits or (bits, bits)
    for name, width in (("bias_gate", gate_bits), ("bias_update", update_bits)):
        if name == "bias_gate" and not fastgrnn:
            continue
        q[name] = QTensor(rng.integers(-(1 << (width - 1)), 1 << (width - 1), hidden), 0, width)
        k[f"shift_{name}"] = width - 15 + int(rng.integers(0, 3))
    coef_a, coef_b = coefs or rng.integers(0, 32768, 2)
    q["coef_a"], q["coef_b"] = QTensor(np.array([coef_a]), Q15, 16), QTensor(np.array([coef_b]),
                                                                           Q15, 16)
    f_pre = int(rng.integers(0, 21)) if preact is None else preact
    f_state = int(rng.integers(0, 21)) if state is None else state
    gate_out = output_frac_bits(gate, f_pre) if fastgrnn else Q15
    update_out = output_frac_bits(update, f_pre)
    aligned = max(f_state, update_out)
    k.update(format_preactivation=f_pre, format_gate_out=gate_out,
             shift_state_align=f_state - aligned, shift_update_align=update_out - aligned,
             shift_state_update=gate_out + aligned - f_state,
             inv_steps=round((1 << INV_STEPS_FRAC_BITS) / steps))
    k.update(consts or {})
    node.consts = k
    return node


def fastrnn_graph(seed: int, steps: int = 5, **settings):
    node = fastrnn_node(seed, steps, **settings)
    graph = single_op_graph(node, (steps, node.q["input_mean"].values.shape[0]),
                            input_frac_bits=8, bits=node.q["bias_update"].bits)
    graph.values["h"].frac_bits = node.consts["format_preactivation"]
    return graph


#: (name, settings): every cell, gate and update kind, readout, width, rank and storage.
CASES = [
    ("grnn sigmoid relu int16 dense", dict(gate="sigmoid", update="relu", features=5, hidden=7)),
    ("grnn sigmoid relu int8 low rank csr mean",
     dict(bits=8, features=9, hidden=12, w_rank=3, u_rank=5, density=0.3, readout="mean")),
    ("grnn sigmoid tanh int8 narrow", dict(update="tanh", bits=8, features=3, hidden=5,
                                           u_rank=2)),
    ("grnn sigmoid tanh int16 preactivation Q9 saturating",
     dict(update="tanh", features=4, hidden=6, preact=9, gain=20)),
    ("grnn sigmoid tanh int16 preactivation Q12", dict(update="tanh", features=4, hidden=5,
                                                       preact=12)),
    ("grnn sigmoid relu int16 preactivation Q14", dict(features=3, hidden=4, preact=14)),
    ("grnn sigmoid quantTanh int16", dict(update="quantTanh", features=3, hidden=4, preact=8)),
    ("grnn sigmoid relu int8 preactivation Q7", dict(bits=8, features=5, hidden=6, preact=7)),
    ("grnn tanh sigmoid int16 low rank csr saturating",
     dict(gate="tanh", update="sigmoid", features=6, hidden=11, w_rank=2, u_rank=3,
          density=0.4, gain=17, coefs=(9000, 20000))),
    ("grnn quantSigm quantTanh int8 interleaved mean",
     dict(gate="quantSigm", update="quantTanh", bits=8, features=13, hidden=9, readout="mean")),
    # the Cortex-M4 quantSigm-gate update (kl_update_quant_gate_dsp): both update kinds and
    # bias widths, the preactivation from Q15 (no rescaling) to Q0 (2^15), saturating
    ("grnn quantSigm quantTanh int8 preactivation Q12 saturating",
     dict(gate="quantSigm", update="quantTanh", bits=8, features=6, hidden=9, preact=12,
          gain=12, coefs=(32767, 32767))),
    ("grnn quantSigm quantTanh int16 preactivation Q15",
     dict(gate="quantSigm", update="quantTanh", features=5, hidden=7, preact=15, state=15)),
    ("grnn quantSigm relu int16 preactivation Q3 saturating",
     dict(gate="quantSigm", update="relu", features=4, hidden=6, preact=3, state=3, gain=16,
          coefs=(-32768, 32767))),
    ("grnn quantSigm relu int8 preactivation Q0 bias shift -14",
     dict(gate="quantSigm", update="relu", bits=8, features=3, hidden=5, preact=0, state=0,
          consts={"shift_bias_gate": -14, "shift_bias_update": -14})),
    ("grnn quantTanh quantSigm int16 rank 1", dict(gate="quantTanh", update="quantSigm",
                                                   features=4, hidden=6, w_rank=1, gain=3,
                                                   coefs=(-3000, 30000))),
    ("grnn relu sigmoid int8 saturating", dict(gate="relu", update="sigmoid", bits=8,
                                               features=7, hidden=10, gain=14, preact=14)),
    ("rnn tanh int16 saturating", dict(cell="fastrnn", update="tanh", features=3, hidden=9,
                                       gain=20)),
    ("rnn relu int8 low rank mean", dict(cell="fastrnn", update="relu", bits=8, features=11,
                                         hidden=8, w_rank=3, u_rank=3, readout="mean")),
    ("rnn sigmoid int16 csr", dict(cell="fastrnn", update="sigmoid", features=10, hidden=13,
                                   density=0.25)),
    ("rnn quantTanh int8 saturating", dict(cell="fastrnn", update="quantTanh", bits=8,
                                           features=2, hidden=3, gain=17)),
    ("rnn quantSigm int16 mean", dict(cell="fastrnn", update="quantSigm", features=1, hidden=1,
                                      readout="mean")),
]

#: (name, settings): kl_plan_update rejects each (the condition it fails is the name) and the
#: reference update runs in the fast build. The quantizer's own Q-formats give four of the
#: state shifts (all but "above 32 + state align") and its coefficients the one above 2^16 (a
#: tanh gate with sigmoid(zeta) near 1); the others are set directly, within the limits of
#: kl_fastgrnn.h.
REJECTED = [
    ("preactivation Q25", dict(cell="fastrnn", update="relu", preact=25, state=10)),
    ("state shift 0", dict(gate="relu", update="relu", preact=0, state=0)),
    ("state shift below 2 + state align", dict(gate="relu", update="relu", preact=1, state=3)),
    ("state shift above 32 + state align",
     dict(update="tanh", consts={"shift_state_update": 40, "shift_state_align": 0,
                                 "shift_update_align": -2})),
    ("state shift below 2 + update align", dict(update="relu", preact=2, state=20)),
    ("state shift above 32 + update align", dict(gate="relu", update="relu", preact=20,
                                                 state=0)),
    ("bias_update shift below -14", dict(cell="fastrnn", update="tanh", bits=8,
                                         consts={"shift_bias_update": -20})),
    ("bias_update shift above 30", dict(update="quantTanh", consts={"shift_bias_update": 31})),
    ("gate Q22", dict(gate="relu", update="relu", preact=22, state=16)),
    ("bias widths differ", dict(update="tanh", bias_bits=(8, 16))),
    ("bias_gate shift above 30", dict(update="sigmoid", consts={"shift_bias_gate": 35})),
    ("bias_gate shift below -14", dict(gate="quantSigm", update="tanh", bias_bits=(8, 8),
                                       consts={"shift_bias_gate": -15})),
    ("coefficient above 2^16", dict(gate="tanh", update="tanh", coefs=(32767, 100))),
    ("coefficient below -2^16", dict(gate="tanh", update="quantTanh", coefs=(-32768, -32768))),
]
#: (name, settings): bias shifts as C sources exported without folding positive bias
#: shifts into the stored biases (``emit_vector(fold_shift=False)``) carry them; the sigmoid-gate
#: update then falls back to the general fast update, with the same integers.
UNFOLDED = [
    ("grnn sigmoid relu int16 unfolded bias shifts", dict(features=4, hidden=6, preact=10)),
    ("grnn sigmoid tanh int16 unfolded bias_update shift",
     dict(update="tanh", features=3, hidden=5, preact=9,
          consts={"shift_bias_gate": 0, "shift_bias_update": 2})),
]

#: Rejected cases also run sanitized: shifts outside the kernels' 32-bit ranges.
SANITIZED_CASES = ("state shift above 32 + state align", "bias_update shift below -14",
                   "bias_gate shift above 30", "coefficient below -2^16")


def test_sweep_covers_every_storage_and_shift_class():
    kernels, shifts = set(), set()
    for seed, (_, settings) in enumerate(CASES + REJECTED):
        node = fastrnn_graph(seed, **settings).nodes[0]
        for name in MATRICES:
            if name in node.q:
                shift = node.consts[f"shift_{name}"]
                kernels.add(emit_matrix("m", node.q[name], shift).kernel)
                shifts.add(1 <= shift <= 31)
    assert kernels >= {"kl_kernel_dense_s16", "kl_kernel_dense_s8_narrow",
                       "kl_kernel_dense_s8_interleaved", "kl_kernel_csr_s8_u8",
                       "kl_kernel_csr_s16_u8"}
    assert shifts == {True, False}


def test_emitted_biases_carry_no_positive_shift():
    node = fastrnn_graph(0, **dict(CASES)["grnn sigmoid relu int16 dense"]).nodes[0]
    for name in ("bias_gate", "bias_update"):
        shift = node.consts[f"shift_{name}"]
        assert shift > 0
        text, initializer = fastgrnn_ops.emit_vector("b", node.q[name], shift, fold_shift=True)
        assert initializer == "{ b, 16, 0 }"
        stored = np.array([int(v) for v in text[text.index("{") + 1:text.index("}")].split(",")])
        assert np.array_equal(stored, shift_round(node.q[name].values, shift))
    _, initializer = fastgrnn_ops.emit_vector("b", node.q["bias_gate"], -3, fold_shift=True)
    assert initializer == "{ b, 16, -3 }"


def test_c_equals_spec_over_the_sweep_and_reaches_every_branch(tmp_path, require_gcc,
                                                                monkeypatch):
    library = LibraryObjects(tmp_path / "library")
    # kl_plan_update's bias shift limits are for sources exported without folding them
    unfolded = {name for name, _ in UNFOLDED} | {"bias_update shift above 30",
                                                  "bias_gate shift above 30"}
    fold = fastgrnn_ops.emit_vector
    for seed, (name, settings) in enumerate(CASES + REJECTED + UNFOLDED):
        graph = fastrnn_graph(seed, **settings)
        steps, features = graph.values["x"].shape
        # a rejected plan runs the reference update in the fast builds already
        builds = SWEEP_BUILDS if seed < len(CASES) else SWEEP_BUILDS[:2]
        builds += SANITIZED if name in SANITIZED_CASES else ()
        folder = tmp_path / name.replace(" ", "-")
        monkeypatch.setattr(fastgrnn_ops, "emit_vector",
                            (lambda *a, **_: fold(*a)) if name in unfolded else fold)
        try:
            assert_c_equals_spec(graph, extreme_inputs((steps, features), 6, seed), folder,
                                 builds, library=library)
        except AssertionError as e:
            raise AssertionError(f"{name}: {e}") from None
    files = branch_coverage(library.coverage_objects())
    assert not files["kl_fastgrnn.c"].untaken(), summary(files, ("kl_fastgrnn.c",))


@pytest.mark.parametrize("name", ["grnn sigmoid relu int8 low rank csr mean",
                                  "grnn sigmoid relu int16 dense", "grnn sigmoid tanh int8 narrow",
                                  "grnn sigmoid tanh int16 preactivation Q12",
                                  "grnn sigmoid tanh int16 preactivation Q9 saturating",
                                  "grnn tanh sigmoid int16 low rank csr saturating",
                                  "rnn quantTanh int8 saturating", "bias widths differ",
                                  "grnn quantSigm quantTanh int8 interleaved mean",
                                  "grnn quantSigm quantTanh int8 preactivation Q12 saturating",
                                  "grnn quantSigm quantTanh int16 preactivation Q15",
                                  "grnn quantSigm relu int16 preactivation Q3 saturating",
                                  "grnn quantSigm relu int8 preactivation Q0 bias shift -14"])
def test_c_equals_spec_in_every_build(name, tmp_path, require_gcc, require_cortex_m):
    cases = dict(CASES + REJECTED)
    seed = list(cases).index(name)
    graph = fastrnn_graph(seed, **cases[name])
    assert_c_equals_spec(graph, extreme_inputs(graph.values["x"].shape, 6, seed), tmp_path,
                         BUILDS)


def _shortest_rounding_up() -> int:
    """The shortest sequence whose ``round(2^30 / T)`` is rounded up enough to lift the mean of
    T states at the int16 limits past them (``T (round(2^30 / T) - 2^30 / T) > 2^14``)."""
    return next(t for t in range(1 << 15, 1 << 16)
                if t * (round((1 << 30) / t) - (1 << 30) / t) >= (1 << 14) + 16)


def test_mean_readout_saturates_when_the_rounded_reciprocal_lifts_it(tmp_path, require_gcc):
    """Units stuck at the int16 limits for T > 2^15 steps: ``round(2^30 / T)`` rounded up makes
    ``shift_round(sum * inv_steps, 30)`` pass the limits, and both saturate alike."""
    steps = _shortest_rounding_up()
    node = fastrnn_node(0, steps, cell="fastrnn", update="quantTanh", readout="mean",
                        features=1, hidden=2, preact=15, state=15, coefs=(32767, 32767),
                        gain=-20)
    node.q["bias_update"] = QTensor(np.array([32767, -32768]), 0, 16)
    node.consts["shift_bias_update"] = 0
    graph = single_op_graph(node, (steps, 1), input_frac_bits=8)
    graph.values["h"].frac_bits = 15
    inputs = extreme_inputs((steps, 1), 1, 0)[[2, 4]]
    total = np.array([32766 + (steps - 1) * 32767, -32767 - (steps - 1) * 32768])
    assert np.all(np.abs(shift_round(total * node.consts["inv_steps"], 30)) > [32767, 32768])
    assert simulate(graph, inputs).tolist() == [[32767, -32768]] * 2
    for variant in ("fast", "reference"):
        assert run_c(graph, inputs, tmp_path, "host", variant)[1].tolist() == [[32767, -32768]] * 2


def _torch_layer(cell: str, gate: str, update: str, w_rank, u_rank) -> torch.nn.Module:
    torch.manual_seed(0)
    if cell == "fastgrnn":
        layer = FastGRNN(4, 6, gate_nonlinearity=gate, update_nonlinearity=update,
                         w_rank=w_rank, u_rank=u_rank, batch_first=True)
    else:
        layer = FastRNN(4, 6, update_nonlinearity=update, w_rank=w_rank, u_rank=u_rank,
                        batch_first=True)
    with torch.no_grad():
        for param in layer.parameters():
            param.add_(0.3 * torch.randn_like(param))
    return layer.double().eval()


def _lowered(layer: torch.nn.Module, steps: int, readout: str,
             normalization: tuple[np.ndarray, np.ndarray]) -> Graph:
    graph = Graph()
    graph.add_input("x", (steps, layer.input_size))
    (output,) = lower(layer, "rnn", graph, ["x"], readout=readout, normalization=normalization)
    graph.set_output(output)
    return graph


LAYERS = [("fastgrnn", gate, update, w_rank, u_rank)
          for gate, update, w_rank, u_rank in zip(KINDS, KINDS[::-1], (None, 2, None, 3, 1),
                                                  (None, 3, 2, None, 4), strict=True)]
LAYERS += [("fastrnn", "", update, None, 2) for update in KINDS]


@pytest.mark.parametrize("cell,gate,update,w_rank,u_rank", LAYERS)
@pytest.mark.parametrize("readout", ["last", "mean"])
def test_float_forward_equals_the_torch_layer(cell, gate, update, w_rank, u_rank, readout):
    layer = _torch_layer(cell, gate, update, w_rank, u_rank)
    mean, std = np.array([1.0, -2.0, 0.5, 3.0]), np.array([2.0, 0.5, 1.0, 4.0])
    X = np.random.default_rng(1).normal(size=(8, 9, 4)) * std + mean
    graph = _lowered(layer, 9, readout, (mean, std))
    with torch.no_grad():
        states, _ = layer(torch.from_numpy((X - mean) / std))
    expected = states.mean(1) if readout == "mean" else states[:, -1]
    np.testing.assert_allclose(run_float(graph, X)[graph.output], expected.numpy(), atol=1e-9)


@pytest.mark.parametrize("bits,tolerance", [(16, 0.01), (8, 0.08)])
@pytest.mark.parametrize("cell,gate,update,w_rank,u_rank", LAYERS[:2] + LAYERS[-2:])
def test_quantized_op_follows_the_float_op(cell, gate, update, w_rank, u_rank, bits, tolerance):
    layer = _torch_layer(cell, gate, update, w_rank, u_rank)
    X = np.random.default_rng(2).normal(size=(64, 9, 4))
    graph = _lowered(layer, 9, "last", (np.zeros(4), np.ones(4)))
    ranges: dict[str, float] = {}
    floats = run_float(graph, X, ranges)[graph.output]
    quantized = quantize_graph(graph, ranges, bits)
    integer = simulate(quantized, quantize_input(quantized, X))
    integer = integer * 2.0 ** -quantized.values[graph.output].frac_bits
    assert np.abs(integer - floats).max() < tolerance * np.abs(floats).max()
