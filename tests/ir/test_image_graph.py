"""Image CNNs through the integer graph: a torch ``nn.Sequential`` (Conv2d + BatchNorm2d +
ReLU6 stem at stride 2, depthwise and pointwise convolutions, max and average pooling, a
global average pooling and a linear head) and a network with a MobileNetV2-style residual
block are lowered (BatchNorm folded, ReLU6 fused), calibrated, quantized to int8, simulated
(argmax agreement with the float model) and generated as C equal to the simulator on the
host, Cortex-M4 and Cortex-M3; the planner's arena against hand-counted peaks; unsupported
layers are one-line errors naming the layer."""

import numpy as np
import pytest
import torch
from torch import nn

from kiloml.errors import KilomlError
from kiloml.ir.calibrate import calibrate, run_float
from kiloml.ir.graph import Graph
from kiloml.ir.lower import lower, lower_conv2d, lower_image_model, lowering
from kiloml.ir.plan import plan_arena
from kiloml.ir.quantize import dequantize_output, quantize_graph, quantize_input
from kiloml.ir.serialize import load_graph, save_graph
from kiloml.ir.simulate import simulate_values
from tests.ops.op_harness import assert_c_equals_spec

SHAPE = (3, 16, 16)
CLASSES = 4


def synthetic_images(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``[count, 3, 16, 16]`` noise with a bright 5×5 square in the quadrant of the label,
    tinted by the label's colour channel; labels ``[count]``."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, size=count)
    X = rng.normal(0.0, 0.5, size=(count, *SHAPE))
    for n, label in enumerate(labels):
        top, left = 8 * (label // 2) + rng.integers(0, 4), 8 * (label % 2) + rng.integers(0, 4)
        X[n, :, top:top + 5, left:left + 5] += 1.5
        X[n, label % 3, top:top + 5, left:left + 5] += 1.0
    return X.astype(np.float32), labels


def small_cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU6(),
        nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), nn.BatchNorm2d(8), nn.ReLU6(),
        nn.Conv2d(8, 16, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6(),
        nn.MaxPool2d(2), nn.AvgPool2d(2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.1), nn.Linear(16, CLASSES))


class ResidualCNN(nn.Module):
    """A stem, one MobileNetV2-style inverted residual block (1×1 expansion + ReLU6, 3×3
    depthwise + ReLU6, linear 1×1 projection added to the block's input), pooling, a head."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8),
                                  nn.ReLU6())
        self.expand = nn.Sequential(nn.Conv2d(8, 24, 1, bias=False), nn.BatchNorm2d(24),
                                    nn.ReLU6())
        self.depthwise = nn.Sequential(nn.Conv2d(24, 24, 3, 1, 1, groups=24, bias=False),
                                       nn.BatchNorm2d(24), nn.ReLU6())
        self.project = nn.Sequential(nn.Conv2d(24, 8, 1, bias=False), nn.BatchNorm2d(8))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(8, CLASSES)

    def forward(self, x):
        x = self.stem(x)
        x = x + self.project(self.depthwise(self.expand(x)))
        return self.head(self.pool(x).flatten(1))


@lowering(ResidualCNN)
def lower_residual_cnn(model: ResidualCNN, path: str, graph: Graph, inputs: list[str]
                       ) -> list[str]:
    """How a residual block lowers: the projection's node adds the block's input."""
    x = lower(model.stem, "stem", graph, inputs)
    y = lower(model.expand, "expand", graph, x)
    y = lower(model.depthwise, "depthwise", graph, y)
    conv, batchnorm = model.project
    y = lower_conv2d(conv, "project.0", graph, y, batchnorm, residual=x[0])
    y = lower(model.pool, "pool", graph, y)
    return lower(model.head, "head", graph, y)


def trained(model: nn.Module, seed: int = 0) -> nn.Module:
    """``model`` after 150 Adam steps on the synthetic task (batch 64), in eval mode."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small convolutions: threads only contend
    torch.manual_seed(seed)
    X, y = synthetic_images(1024, seed=1)
    xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for step in range(150):
        batch = torch.from_numpy(np.random.default_rng(step).integers(0, len(X), 64))
        loss = nn.functional.cross_entropy(model(xt[batch]), yt[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    torch.set_num_threads(threads)
    return model.eval()


@pytest.fixture(scope="module", params=["sequential", "residual"])
def quantized(request):
    """``(model, float graph, quantized graph, test images, test labels)``."""
    model = trained(small_cnn() if request.param == "sequential" else ResidualCNN())
    graph = lower_image_model(model, SHAPE, CLASSES)
    calib, _ = synthetic_images(256, seed=2)
    q = quantize_graph(graph, calibrate(graph, calib.astype(np.float64)), bits=8)
    X, y = synthetic_images(200, seed=3)
    return model, graph, q, X, y


def test_the_float_graph_equals_torch(quantized):
    model, graph, _, X, _ = quantized
    with torch.no_grad():
        expected = model(torch.from_numpy(X[:16])).double().numpy()
    got = run_float(graph, X[:16].astype(np.float64))[graph.output]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_the_int8_simulator_agrees_with_the_float_model(quantized):
    """The trained model is accurate; on 200 unseen images the integer graph's arg-max agrees
    with the float model's on at least 95 % and its logits are off by 3 % of the logits'
    spread on average, 15 % at most (measured: 1.1 % / 6.5 % and 1.8 % / 7.9 %)."""
    model, graph, q, X, y = quantized
    with torch.no_grad():
        floats = model(torch.from_numpy(X)).double().numpy()
    values = simulate_values(q, quantize_input(q, X))
    assert (floats.argmax(1) == y).mean() >= 0.9
    assert (values["class"] == floats.argmax(1)).mean() >= 0.95
    error = np.abs(dequantize_output(q, values[q.output]) - floats)
    assert error.mean() <= 0.03 * floats.std() and error.max() <= 0.15 * floats.std()
    assert all(q.values[v].dtype == "int8" for n in q.nodes[:-3] for v in n.outputs)


def test_c_equals_the_simulator_on_host_and_cortex_m(quantized, tmp_path, require_gcc,
                                                     require_cortex_m):
    _, _, q, X, _ = quantized
    assert_c_equals_spec(q, quantize_input(q, X[:6]), tmp_path,
                         (("host", "fast"), ("host", "sanitize"), ("cortex-m4", "fast"),
                          ("cortex-m3", "fast")))


def test_the_quantized_graph_round_trips_through_serialization(quantized, tmp_path):
    _, _, q, X, _ = quantized
    save_graph(q, tmp_path / "graph.npz")
    loaded = load_graph(tmp_path / "graph.npz")
    x = quantize_input(q, X[:8])
    assert np.array_equal(simulate_values(loaded, x)[loaded.output],
                          simulate_values(q, x)[q.output])
    assert loaded.flash_bytes() == q.flash_bytes() and loaded.macs() == q.macs()


def test_ops_weights_and_macs_are_counted(quantized):
    _, _, q, _, _ = quantized
    ops = q.ops()
    assert ops[0] == "conv2d" and "depthwise_conv2d" in ops and "pointwise_conv2d" in ops
    stem = q.nodes[0]
    # 8 channels x 27 int8 weights + 9 bytes of bias, multiplier and shift per channel
    assert q.flash_bytes() >= 8 * 27 + 8 * 9
    assert stem.q["weight"].values.shape == (8, 3, 3, 3)
    assert q.macs() >= 8 * 8 * 8 * 27  # the stem alone: 8x8 outputs x 8 channels x 27 taps


def _image_graph(layers: nn.Module, shape=SHAPE) -> Graph:
    graph = Graph(meta={"kind": "image", "num_classes": 0, "frame_stack": 1})
    graph.add_input("x", shape)
    (out,) = lower(layers, "", graph, ["x"])
    graph.set_output(out)
    return graph


def test_the_arena_is_the_hand_counted_peak_of_a_residual_block():
    """x int16 [3, 8, 8] (the caller's) → stem [4, 4, 4] int8 (64 B) → depthwise (64 B) →
    projection + stem's output (64 B) → pool int16 [4] (8 B, the graph's output). The stem's
    output lives until the projection reads it, so at the projection three maps are alive:
    192 B."""
    torch.manual_seed(0)
    stem = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.ReLU6())
    depthwise = nn.Sequential(nn.Conv2d(4, 4, 3, 1, 1, groups=4), nn.ReLU6())
    project = nn.Conv2d(4, 4, 1)
    graph = Graph()
    graph.add_input("x", (3, 8, 8))
    x = lower(stem, "stem", graph, ["x"])
    y = lower(depthwise, "dw", graph, x)
    y = lower_conv2d(project, "project", graph, y, residual=x[0])
    (out,) = lower(nn.AdaptiveAvgPool2d(1), "pool", graph, y)
    graph.set_output(out)
    assert [v.nbytes for v in graph.values.values()] == [384, 64, 64, 64, 8]
    assert plan_arena(graph).peak == 3 * 64


def test_the_arena_of_a_sequential_cnn_is_its_largest_neighbouring_pair():
    """int16 input [3, 16, 16] (the caller's) → conv [8, 16, 16] 2048 B → max pool
    [8, 8, 8] 512 B → conv stride 2 [16, 4, 4] 256 B → global pool (the output): the peak is
    the first two maps alive together, 2048 + 512 B."""
    layers = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),
                           nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU6(), nn.AdaptiveAvgPool2d(1))
    graph = _image_graph(layers)
    assert plan_arena(graph).peak == 2048 + 512


@pytest.mark.parametrize("layers,message", [
    (nn.Conv2d(3, 4, 13), r"^Conv2d: convolution kernel 13x13 is not supported"),
    (nn.Sequential(nn.Conv2d(3, 4, 3, stride=5)), r"^0: convolution stride 5x5 is not supported"),
    (nn.Sequential(nn.Conv2d(3, 4, 3, padding=3)),
     r"^0: convolution padding \[3, 3, 3, 3\] is not supported"),
    (nn.Sequential(nn.Conv2d(3, 4, 3, dilation=2)), r"cannot export 0 \(Conv2d\): .*dilation"),
    (nn.Sequential(nn.Conv2d(3, 6, 3, groups=3)), r"cannot export 0 \(Conv2d\): grouped"),
    (nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(2)),
     r"cannot export 1 \(AdaptiveAvgPool2d\): .*output_size 1"),
    (nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(2, ceil_mode=True)),
     r"cannot export 1 \(MaxPool2d\): .*ceil_mode"),
    (nn.Sequential(nn.Conv2d(3, 4, 3), nn.AvgPool2d(3, 1, 1)),
     r"^1: average pooling with padding \[1, 1, 1, 1\] is not supported"),
    (nn.Sequential(nn.BatchNorm2d(3)), r"cannot export 0 \(BatchNorm2d\): it must directly "),
    (nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten()), r"cannot export 1 \(Flatten\)"),
])
def test_unsupported_layers_are_one_line_errors_naming_the_layer(layers, message):
    with pytest.raises(KilomlError, match=message) as error:
        _image_graph(layers)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("layers,shape,message", [
    (small_cnn(), (1, 16, 16), r"cannot export 0 \(Conv2d\): it needs a \[3, H, W\] map, "
                               r"got \[1, 16, 16\]"),
    (small_cnn(), (3, 1, 1), r"^9: a 1x1 map is smaller than the max pooling kernel 2x2"),
    (nn.Sequential(nn.Conv2d(3, 3, 3, padding=1, groups=3)), SHAPE,
     r"^0: the depthwise convolution reads int8 maps, got int16"),
    (nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU6()), SHAPE,
     r"the model's output \[4, 14, 14\] is not the 4 logits of an image classifier"),
])
def test_images_of_the_wrong_shape_are_one_line_errors(layers, shape, message):
    with pytest.raises(KilomlError, match=message):
        lower_image_model(layers.eval(), shape, CLASSES)
