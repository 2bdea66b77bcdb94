"""The checks every model family passes, at int16 and int8 weights: the module's shapes,
determinism and save/load round trip; its float graph equals the torch module; the integer
simulator stays close to the float model; the generated C equals the simulator on the host,
Cortex-M4 and Cortex-M3; the exported flash is the sum of the ops' accounting and what the
size accounting predicts from the float model."""

from functools import cache

import numpy as np
import pytest
import torch

from kiloml import runs
from kiloml.compress.size import model_size_bytes
from kiloml.deploy.codegen import c_sources, generate_model
from kiloml.deploy.export import write_sources
from kiloml.deploy.targets import TARGETS, Build
from kiloml.deploy.verify import run_model
from kiloml.ir import (
    dequantize_output,
    float_graph_logits,
    lower_model,
    quantize_input,
    quantize_model,
    simulate,
)
from kiloml.models import FAMILIES, build_model
from kiloml.ops import get_op

STEPS, FEATURES, CLASSES = 16, 5, 4
#: A small configuration of every family (its config class gets input_size, num_classes).
SETTINGS = {
    "fastgrnn": dict(hidden_size=12, w_rank=3, u_rank=4),
    "fastrnn": dict(hidden_size=10, readout="mean"),
    "gru": dict(hidden_size=10),
    "lstm": dict(hidden_size=8, readout="mean"),
    "dscnn": dict(channels=8, blocks=2, kernel_size=4, stride=2),
    "sharnn": dict(brick_size=4, hidden_size=6, upper_hidden_size=8, u_rank=4),
    "protonn": dict(projection_dim=6, prototypes=8, scale="feature"),
    "bonsai": dict(projection_dim=5, depth=2, sigma=1.5),
}

#: Families with a discrete decision inside (Bonsai's branches): the share of inputs allowed
#: beyond the tolerance, for the inputs so close to a branching hyperplane that the integer
#: model takes the other branch (then its scores are another node's, not a rounding of them).
BRANCH_FLIPS = {"bonsai": 0.05}


#: Deploying families whose graph is not the whole window's forward, checked by their own
#: tests: EMI-FastGRNN's graph reads one instance and its head has a noise class
#: (tests/deploy/test_early_exit_c.py: C == streaming spec at int8/int16 on host/M4/M3/AVR);
#: the image families take images at int8 under three schedules
#: (tests/deploy/test_image_export.py: C == simulator on host/M4/M3, kiloml demo).
CHECKED_ELSEWHERE = {"emi-fastgrnn", "mobilenetv2", "rnnpool-mobilenetv2"}


def test_every_registered_family_is_checked():
    """Every family that deploys (the cascade does not yet: tests/train/test_cascade.py)."""
    deploying = {name for name, family in FAMILIES.items() if family.deploys}
    assert deploying - CHECKED_ELSEWHERE <= set(SETTINGS)
    assert CHECKED_ELSEWHERE <= deploying


def _shape(name: str) -> tuple[int, int]:
    """``(steps, features)`` of a family's input: the sequences, or a vector family's feature
    vectors (each sequence flattened, held as one step)."""
    if name in FAMILIES and FAMILIES[name].input_kind == "vector":
        return 1, STEPS * FEATURES
    return STEPS, FEATURES


def _inputs(count: int, seed: int, name: str = "") -> np.ndarray:
    rng = np.random.default_rng(seed)
    scale, offset = np.array([1.0, 3.0, 40.0, 0.5, 9.0]), np.array([0.0, 2.0, -5.0, 1.0, 30.0])
    t = np.arange(STEPS)[None, :, None]
    waves = np.sin(0.3 * t * np.arange(1, FEATURES + 1) + rng.uniform(0, 6, (count, 1, FEATURES)))
    x = ((waves + 0.5 * rng.normal(size=(count, STEPS, FEATURES))) * scale + offset
         ).astype(np.float32)
    return x.reshape(count, *_shape(name))


@cache
def family_model(name: str, seed: int = 0) -> torch.nn.Module:
    """A model of family ``name`` with seeded random weights (and, for BatchNorm, running
    statistics) and normalisation fitted on the inputs."""
    torch.manual_seed(seed)
    family = FAMILIES[name]
    steps, features = _shape(name)
    config = family.config(kind=name, input_size=features, num_classes=CLASSES,
                           **SETTINGS[name]).validate()
    model = build_model(config)
    X = torch.from_numpy(_inputs(64, seed=100, name=name).reshape(-1, features))
    model.set_normalization(X.mean(0), X.std(0))
    if hasattr(model, "init_from_data"):
        labels = np.arange(64) % CLASSES
        model.init_from_data(X.numpy(), labels, seed)
    model.train()
    with torch.no_grad():  # settle any running statistics, then evaluate
        for _ in range(3):
            model(torch.from_numpy(_inputs(32, seed=101, name=name)))
    return model.eval()


def _logits(model: torch.nn.Module, X: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(X)).double().numpy()


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_module_shapes_determinism_and_round_trip(name, tmp_path):
    if name not in FAMILIES:
        pytest.skip(f"{name} is not registered")
    X = _inputs(6, seed=1, name=name)
    model = family_model(name)
    assert _logits(model, X).shape == (6, CLASSES)
    assert np.array_equal(_logits(family_model.__wrapped__(name), X), _logits(model, X))
    runs.save_run_config(tmp_path, model.config, {"dataset": "synthetic"}, {})
    runs.save_weights(model, tmp_path / runs.WEIGHTS_FILE)
    _, loaded = runs.load_run(tmp_path)
    assert np.array_equal(_logits(loaded, X), _logits(model, X))


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_float_graph_equals_the_torch_module(name):
    if name not in FAMILIES:
        pytest.skip(f"{name} is not registered")
    X = _inputs(8, seed=2, name=name)
    model = family_model(name)
    graph = lower_model(model, _shape(name)[0])
    np.testing.assert_allclose(float_graph_logits(graph, X), _logits(model, X),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("bits, tolerance", [(16, 0.02), (8, 0.15)])
@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_simulator_stays_close_to_the_float_model(name, bits, tolerance):
    if name not in FAMILIES:
        pytest.skip(f"{name} is not registered")
    model = family_model(name)
    graph = quantize_model(model, _inputs(48, seed=3, name=name), bits)
    X = _inputs(64, seed=4, name=name)
    reference = _logits(model, X)
    integer = dequantize_output(graph, simulate(graph, quantize_input(graph, X)))
    error = np.abs(integer - reference).max(1)
    within = error <= tolerance * np.abs(reference).max()
    assert within.mean() >= 1 - BRANCH_FLIPS.get(name, 0.0)
    assert np.mean(integer.argmax(1) == reference.argmax(1)) >= (0.95 if bits == 16 else 0.8)


@pytest.mark.parametrize("bits", [16, 8])
@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_c_equals_the_simulator_on_every_target(name, bits, tmp_path, require_gcc,
                                                require_cortex_m):
    if name not in FAMILIES:
        pytest.skip(f"{name} is not registered")
    model = family_model(name)
    graph = quantize_model(model, _inputs(48, seed=3, name=name), bits)
    x = quantize_input(graph, _inputs(12, seed=5, name=name))
    saturating = np.stack([np.full(x.shape[1:], -32768), np.full(x.shape[1:], 32767)])
    x = np.concatenate([x, saturating.astype(np.int16)])
    expected = simulate(graph, x)
    generated = generate_model(graph, name)
    files = write_sources(generated, tmp_path / "src")
    sources = [tmp_path / "src" / "model.c", *(tmp_path / "src" / f for f in c_sources(files))]
    for target in ("host", "cortex-m4", "cortex-m3"):
        build = Build(TARGETS[target], sources, [tmp_path / "src"], tmp_path / target).compile()
        returned, outputs, _ = run_model(build, x, CLASSES, poison=0x5A)
        assert np.array_equal(outputs, expected), target
        assert np.array_equal(returned, expected.argmax(1)), target


#: Families the Arduino Uno target runs (their ops are kiloml.deploy.avr.AVR_OPS).
AVR_FAMILIES = ("protonn", "bonsai", "fastgrnn")


@pytest.mark.parametrize("bits", [16, 8])
@pytest.mark.parametrize("name", AVR_FAMILIES)
def test_c_equals_the_simulator_on_the_avr(name, bits, tmp_path, require_avr):
    """The same check on the ATmega328P in simavr (16-bit int, constants in program memory),
    fast and reference builds, with simavr's cycle count for every inference."""
    model = family_model(name)
    graph = quantize_model(model, _inputs(48, seed=3, name=name), bits)
    x = quantize_input(graph, _inputs(4, seed=5, name=name))
    saturating = np.stack([np.full(x.shape[1:], -32768), np.full(x.shape[1:], 32767)])
    x = np.concatenate([x, saturating.astype(np.int16)])
    expected = simulate(graph, x)
    files = write_sources(generate_model(graph, name), tmp_path / "src")
    sources = [tmp_path / "src" / "model.c", *(tmp_path / "src" / f for f in c_sources(files))]
    for variant in ("fast", "reference"):
        build = Build(TARGETS["avr"], sources, [tmp_path / "src"], tmp_path / variant,
                      variant).compile()
        returned, outputs, run = run_model(build, x, CLASSES, poison=0x5A,
                                           count_instructions=True)
        assert np.array_equal(outputs, expected), variant
        assert np.array_equal(returned, expected.argmax(1)), variant
        assert len(run.instructions) == len(x) and min(run.instructions) > 1000
        assert 0 < run.stack_bytes_measured < 512


@pytest.mark.parametrize("bits", [16, 8])
@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_flash_is_the_sum_of_the_ops_and_the_size_accounting(name, bits):
    if name not in FAMILIES:
        pytest.skip(f"{name} is not registered")
    model = family_model(name)
    graph = quantize_model(model, _inputs(48, seed=3, name=name), bits)
    generated = generate_model(graph, name)
    assert generated.weight_flash_bytes == sum(get_op(n.op).flash_bytes(n)
                                               for n in graph.nodes)
    assert generated.weight_flash_bytes == sum(e["bytes"] for e in generated.storage.values())
    zeroed = sum(int(np.count_nonzero(q.values == 0)) for n in graph.nodes
                 for q in n.q.values())
    float_zeros = sum(int((p == 0).sum()) for p in model.state_dict().values())
    if bits == 16 and zeroed == float_zeros:  # quantization zeroed no further weight
        assert generated.weight_flash_bytes == model_size_bytes(model, 2)
