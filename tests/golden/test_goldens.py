"""The deployment goldens, frozen from the exports of the FastGRNN-shaped path that came before
the integer graph (``tests/golden/cases/*``, see ``freeze.py``), reproduced bit for bit:

* the quantizer, given the golden's float model and calibration ranges, chooses the same
  Q-formats and integer tensors;
* calibration on the golden's calibration data records the same ranges;
* the simulator gives the golden logits on the stored inputs (test inputs and saturating ones);
* the generated C gives them on the host, Cortex-M4 and Cortex-M3, with no more arena than the
  golden scratch, flash within +1 % and instructions within +2 % of the golden.
"""

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch

from kiloml.deploy.codegen import c_sources, generate_model
from kiloml.deploy.export import write_sources
from kiloml.deploy.targets import TARGETS, Build, flash_bytes, matrix_kernels
from kiloml.deploy.verify import run_model
from kiloml.ir.calibrate import calibrate
from kiloml.ir.graph import Graph
from kiloml.ir.lower import lower_model
from kiloml.ir.quantize import quantize_graph
from kiloml.ir.simulate import simulate_values
from kiloml.nn.classifier import ModelConfig, build_model, stack_frames
from kiloml.ops.fixed import QTensor

from ..conftest import SHARED_DATA
from .cases import CASES, synthetic_calibration, trained_data

CASES_DIR = Path(__file__).parent / "cases"
#: The old quantizer's tensor names → (node, tensor) of the graph.
TENSORS = {"input_mean": ("rnn", "input_mean"), "input_inv_std": ("rnn", "input_inv_std"),
           "sigmoid_zeta": ("rnn", "coef_a"), "sigmoid_nu": ("rnn", "coef_b"),
           "sigmoid_alpha": ("rnn", "coef_a"), "sigmoid_beta": ("rnn", "coef_b"),
           "head_weight": ("head", "weight"), "head_bias": ("head", "bias")}
#: Cases whose C runs on Cortex-M in the tests (every case runs on the host).
CORTEX_M_CASES = ("demo-int16", "demo-int8", "kws-h64-int16", "kws-h64-int8",
                  "fastgrnn-lowrank-mean-int8", "fastrnn-int16", "fastgrnn-quant-int8",
                  "fastgrnn-relu-gate-int16", "fastgrnn-stack4-int8", "smallest",
                  "wide-int8-u16-index", "int8-under-8-weights", "int8-rank-2-of-4",
                  "int8-5-and-4-columns", "int8-7-and-6-columns", "int8-1-and-8-columns",
                  "int16-csr", "int8-rows-over-511", "cost-default-int16", "cost-default-int8",
                  "cost-dense-int16", "cost-tanh-int16", "cost-stack8-int8",
                  "speech-quant-int8", "speech-quant-int16", "speech-quant-relu-int8",
                  "speech-quant-dense-int8", "speech-quant-dense-int16")


@cache
def golden(name: str) -> tuple[dict, dict[str, np.ndarray]]:
    case = CASES_DIR / name
    with np.load(case / "golden.npz") as data:
        arrays = {key: data[key] for key in data.files}
    return json.loads((case / "golden.json").read_text()), arrays


def float_model(name: str) -> torch.nn.Module:
    info, arrays = golden(name)
    model = build_model(ModelConfig.from_dict(info["config"]["model"]))
    model.load_state_dict({key.removeprefix("float_"): torch.from_numpy(value)
                           for key, value in arrays.items() if key.startswith("float_")})
    return model.eval()


def graph_ranges(old: dict[str, float]) -> dict[str, float]:
    """The old calibration's range names as the graph's."""
    names = {"input": "x", "logits": "logits"}
    return {names.get(key, f"rnn.{key}"): value for key, value in old.items()}


@cache
def golden_graph(name: str) -> Graph:
    """The golden's float model quantized by the graph quantizer with the golden's ranges."""
    info, _ = golden(name)
    raw_steps = info["model"]["steps"] * info["model"]["frame_stack"]
    graph = lower_model(float_model(name), raw_steps)
    return quantize_graph(graph, graph_ranges(info["ranges"]), info["model"]["bits"])


def tensor(graph: Graph, old_name: str) -> QTensor:
    node, name = TENSORS.get(old_name, ("rnn", old_name))
    return next(n for n in graph.nodes if n.name == node).q[name]


@pytest.mark.parametrize("name", list(CASES))
def test_quantizer_chooses_the_golden_formats_and_integers(name):
    info, arrays = golden(name)
    graph = golden_graph(name)
    rnn = next(n for n in graph.nodes if n.name == "rnn")
    formats = {"input": graph.values["x"].frac_bits, "logits": graph.values["logits"].frac_bits,
               **{key.removeprefix("format_"): value for key, value in rnn.consts.items()
                  if key.startswith("format_") and key != "format_input"}}
    assert formats == info["formats"]
    for old_name, meta in info["tensors"].items():
        got = tensor(graph, old_name)
        assert (got.frac_bits, got.bits) == (meta["frac_bits"], meta["bits"]), old_name
        assert np.array_equal(got.values, arrays[f"tensor_{old_name}"]), old_name
    assert graph.flash_bytes() == info["weight_flash_bytes"]
    assert graph.macs() == info["macs_per_inference"]


@pytest.mark.parametrize("name", list(CASES))
def test_simulator_gives_the_golden_logits(name):
    _, arrays = golden(name)
    graph = golden_graph(name)
    values = simulate_values(graph, arrays["inputs"])
    assert np.array_equal(values["logits"], arrays["logits"])
    assert np.array_equal(values["class"], arrays["logits"].argmax(1))


def _calibration_data(name: str) -> np.ndarray:
    case = CASES[name]
    if case["source"] == "trained":
        if case["dataset"] != "smartwatch":
            pytest.skip("the speech golden's calibration data is the full speech dataset; its "
                        "quantization is checked from the stored ranges")
        try:
            X_calib, _, _ = trained_data(case, SHARED_DATA)
        except Exception as e:  # noqa: BLE001 - a missing dataset package skips, nothing else
            pytest.skip(f"smartwatch data unavailable: {e}")
        return X_calib
    return synthetic_calibration(case)[0]


@pytest.mark.parametrize("name", [n for n in CASES if not n.startswith("kws")])
def test_calibration_records_the_golden_ranges(name):
    info, _ = golden(name)
    X_calib = _calibration_data(name)
    graph = lower_model(float_model(name), X_calib.shape[1])
    ranges = calibrate(graph, stack_frames(X_calib.astype(np.float64),
                                           graph.meta["frame_stack"]))
    expected = graph_ranges(info["ranges"])
    recorded = {key: value for key, value in ranges.items() if key in expected}
    assert recorded.keys() == expected.keys()
    for key, value in expected.items():
        assert recorded[key] == pytest.approx(value, rel=1e-12, abs=0), key


def _targets(name: str) -> list[str]:
    return ["host"] + (["cortex-m4", "cortex-m3"] if name in CORTEX_M_CASES else [])


@pytest.mark.parametrize("name,target", [(n, t) for n in CASES for t in _targets(n)])
def test_c_gives_the_golden_logits_within_the_golden_costs(name, target, tmp_path, request):
    fixture = "require_cortex_m" if TARGETS[target].emulated else "require_gcc"
    request.getfixturevalue(fixture)
    info, arrays = golden(name)
    graph = golden_graph(name)
    generated = generate_model(graph, f"golden {name}")
    files = write_sources(generated, tmp_path / "src")
    sources = [tmp_path / "src" / "model.c", *(tmp_path / "src" / f for f in c_sources(files))]
    build = Build(TARGETS[target], sources, [tmp_path / "src"], tmp_path / "build").compile()
    returned, logits, run = run_model(build, arrays["inputs"], graph.meta["num_classes"],
                                      count_instructions=TARGETS[target].emulated)
    assert np.array_equal(logits, arrays["logits"])
    assert np.array_equal(returned, arrays["logits"].argmax(1))
    assert generated.scratch_bytes <= info["scratch_bytes"]
    old = info["targets"][target]
    if target == "host":
        return
    assert flash_bytes(build) <= 1.01 * old["flash_bytes"]
    stack = build.stack_bytes("kiloml_predict", matrix_kernels(tmp_path / "src" / "model.c"))
    assert run.stack_bytes_measured <= stack
    assert run.instructions is not None and len(run.instructions) == len(arrays["inputs"])
    assert np.mean(run.instructions) <= 1.02 * old["instructions_per_inference"]
