"""A small DS-CNN trained, exported and verified: its C equals the simulator on every test
input on the host, Cortex-M4 and Cortex-M3; flash, MACs and the arena are what the accounting
says, and the arena reuses memory between layers."""

import copy
import json

import pytest

from kiloml import runs
from kiloml.compress.size import macs_per_inference, model_size_bytes
from kiloml.deploy.export import export_run
from kiloml.deploy.verify import verify_export
from kiloml.errors import KilomlError
from kiloml.ir import quantize_model
from kiloml.ir.plan import plan_arena
from kiloml.nn.dscnn import DSCNNConfig
from kiloml.ops import get_op
from kiloml.train.fit import fit
from kiloml.train.trainer import TrainConfig
from tests.conftest import synthetic_splits


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    data = synthetic_splits(n_train=96, steps=15)
    config = DSCNNConfig(kind="dscnn", input_size=3, num_classes=3, channels=8, blocks=2,
                         kernel_size=4, stride=2)
    outcome = fit(data, config, TrainConfig(epochs=8, batch_size=32, lr=2e-2))
    run_dir = tmp_path_factory.mktemp("dscnn") / "run"
    run_dir.mkdir()
    runs.save_run_config(run_dir, config, {"dataset": "synthetic"}, {})
    runs.save_weights(outcome.model, run_dir / runs.WEIGHTS_FILE)
    return data, outcome, run_dir


def test_export_verifies_exactly_on_every_target(trained, tmp_path, require_gcc,
                                                 require_cortex_m):
    data, outcome, run_dir = trained
    assert outcome.metrics["test_accuracy"] >= 0.6  # it learned (3 classes)
    info = export_run(run_dir, tmp_path, bits=8, X_calib=data.train.x, X_test=data.test.x,
                      y_test=data.test.y)
    assert info["ops"] == ["normalize", "conv1d", "depthwise_conv1d", "pointwise_conv1d",
                           "global_avgpool", "fully_connected", "argmax"]
    report = verify_export(tmp_path)
    for target in ("host", "cortex-m4", "cortex-m3"):
        entry = report["targets"][target]
        assert entry["exact_match"] == 1.0 and entry["inputs"] == len(data.test), target
        assert entry["accuracy"] == report["simulated_accuracy"]
    assert abs(report["simulated_accuracy"] - outcome.metrics["test_accuracy"]) <= 0.1
    m4 = report["targets"]["cortex-m4"]
    assert 0 < m4["stack_bytes_measured"] <= m4["stack_bytes"]
    assert m4["instructions_per_inference"] > info["macs_per_inference"]
    assert f"#define KILOML_SCRATCH_BYTES {info['scratch_ram_bytes']}" in (
        tmp_path / "model.h").read_text()
    assert json.loads((tmp_path / "verify.json").read_text())["model_kind"] == "dscnn"


def test_flash_and_macs_are_the_accounting_of_the_torch_model(trained):
    data, outcome, _ = trained
    model = outcome.model
    graph = quantize_model(model, data.train.x, bits=16)
    assert graph.flash_bytes() == model_size_bytes(model, 2)
    assert graph.macs() == macs_per_inference(model, data.steps)
    assert outcome.metrics["model_size_bytes_int16"] == model_size_bytes(model, 2)


def test_the_arena_holds_two_consecutive_maps_at_a_time(trained):
    data, outcome, _ = trained
    graph = quantize_model(outcome.model, data.train.x, bits=8)
    plan = plan_arena(graph)
    live_per_node = []
    for node in graph.nodes:
        inputs, outputs = graph.node_values(node)
        values = [v.nbytes for v in inputs + outputs if v.storage == "arena"]
        buffers = [b.nbytes for b in get_op(node.op).buffers(node, inputs, outputs)]
        live_per_node.append(sum(values) + sum(buffers))
    assert plan.peak == -(-max(live_per_node) // 4) * 4
    every_value = sum(v.nbytes for v in graph.values.values() if v.storage == "arena")
    assert plan.peak < every_value / 2


def test_a_convolution_without_an_integer_kernel_is_named(trained):
    data, outcome, _ = trained
    model = copy.deepcopy(outcome.model)
    model.blocks[1].depthwise.conv.dilation = (2,)
    with pytest.raises(KilomlError, match=r"cannot export blocks\.1\.depthwise \(Conv1d\): "
                                          "integer deployment needs numeric zero padding"):
        quantize_model(model, data.train.x)
