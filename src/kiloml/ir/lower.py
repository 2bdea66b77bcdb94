"""Lowering: torch modules → graph nodes, one registered function per module type.

``lower_model(model, steps)`` builds the float graph of a trained model. A lowering function
``fn(module, path, graph, inputs, **options) -> outputs`` appends the nodes of ``module``
(called ``path`` in the model) reading the value names ``inputs`` and returns the names of its
outputs; a composite module lowers its children through :func:`lower`. A module without a
lowering is a one-line error naming it and its path.
"""

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from kiloml.errors import KilomlError
from kiloml.ir.graph import Graph
from kiloml.nn.bonsai import Bonsai
from kiloml.nn.classifier import SequenceClassifier, torch_rnn_gates
from kiloml.nn.dscnn import DSCNN, ConvBNReLU1d, DepthwiseSeparableBlock
from kiloml.nn.emi import EMIFastGRNN
from kiloml.nn.fastrnn import FastGRNN, FastRNN
from kiloml.nn.mobilenetv2 import ConvBN, InvertedResidual, MobileNetV2
from kiloml.nn.protonn import ProtoNN
from kiloml.nn.rnnpool import RNNPool, RNNPoolLayer
from kiloml.nn.rnnpool_mobilenetv2 import RNNPoolMobileNetV2
from kiloml.nn.sharnn import ShaRNN
from kiloml.ops.base import Node

Lowering = Callable[..., list[str]]
#: FastRNN/FastGRNN parameters stored as [1, n] in torch and used as vectors.
VECTORS_AND_SCALARS = ("bias_gate", "bias_update", "zeta", "nu", "alpha", "beta")
LOWERINGS: dict[type, Lowering] = {}


def lowering(*module_types: type) -> Callable[[Lowering], Lowering]:
    """Decorator: register ``fn`` as the lowering of ``module_types``."""
    def register(fn: Lowering) -> Lowering:
        for module_type in module_types:
            LOWERINGS[module_type] = fn
        return fn
    return register


def lower(module: nn.Module, path: str, graph: Graph, inputs: list[str], **options
          ) -> list[str]:
    """Append the nodes of ``module`` to ``graph`` (see the module docstring)."""
    fn = LOWERINGS.get(type(module))
    if fn is None:
        raise KilomlError(f"cannot export {path or 'the model'} ({type(module).__name__}): "
                          "kiloml has no integer lowering for this module")
    return fn(module, path, graph, inputs, **options)


def array(tensor: torch.Tensor) -> np.ndarray:
    """A parameter or buffer as a float64 numpy array."""
    return tensor.detach().to(torch.float64).numpy().copy()


def node_name(path: str) -> str:
    """A C-identifier-safe node name for a module path."""
    return path.replace(".", "_") or "model"


@lowering(FastGRNN, FastRNN)
def lower_fast_rnn(module: FastRNN, path: str, graph: Graph, inputs: list[str],
                   readout: str = "last", normalization: tuple[np.ndarray, np.ndarray] | None = None
                   ) -> list[str]:
    """One fused ``fastrnn`` node: normalisation of each frame (``normalization`` = float
    ``(mean, std)`` per input feature, else none), the recurrence and the readout."""
    if module.bidirectional:
        raise KilomlError(f"cannot export {path} ({type(module).__name__}): integer deployment "
                          "needs a unidirectional layer")
    cell = module.cell
    fastgrnn = isinstance(module, FastGRNN)
    features = graph.values[inputs[0]].shape[1]
    mean, std = normalization if normalization is not None else (np.zeros(features),
                                                                  np.ones(features))
    weights = {"input_mean": mean, "input_std": std}
    for name, param in cell.named_parameters():
        value = array(param)
        weights[name] = value.reshape(-1) if name in VECTORS_AND_SCALARS else value
    attrs = {"cell": "fastgrnn" if fastgrnn else "fastrnn",
             "gate": cell.gate_nonlinearity if fastgrnn else "",
             "update": cell.update_nonlinearity, "readout": readout}
    name = node_name(path)
    return graph.add_node(Node(name, "fastrnn", inputs, [f"{name}_out"], attrs, weights, path))



@lowering(RNNPool, RNNPoolLayer)
def lower_rnnpool(module: RNNPool | RNNPoolLayer, path: str, graph: Graph, inputs: list[str],
                  padding: tuple[int, int, int, int] = (0, 0, 0, 0)) -> list[str]:
    """One ``rnnpool`` node over the ``[C, H, W]`` map (int16 or int8) zero-padded by
    ``padding`` ``(top, bottom, left, right)``: ``RNNPoolLayer``'s patches and strides, or for
    ``RNNPool`` one patch covering the map (output the vector ``[4·h2]``, as the module
    returns). Both cells get an identity normalisation."""
    pool = module.pool if isinstance(module, RNNPoolLayer) else module
    shape = graph.values[inputs[0]].shape
    if len(shape) != 3 or shape[0] != pool.in_channels:
        raise KilomlError(f"cannot export {path or 'the model'} ({type(module).__name__}): it "
                          f"needs a [{pool.in_channels}, H, W] map, got {list(shape)}")
    if isinstance(module, RNNPoolLayer):
        module.output_size(shape[1] + padding[0] + padding[1], shape[2] + padding[2] + padding[3])
        patch, stride = list(module.patch_size), list(module.stride)
    else:
        patch, stride = list(shape[1:]), [1, 1]
    cells = (pool.rnn1, pool.rnn2)
    kinds = [(cell.gate_nonlinearity, cell.update_nonlinearity) for cell in cells]
    if kinds[0] != kinds[1]:
        raise KilomlError(f"cannot export {path or 'the model'} (RNNPool): both cells need the "
                          "same gate and update nonlinearities")
    weights = {}
    for prefix, cell in zip(("rnn1", "rnn2"), cells, strict=True):
        weights[f"{prefix}.input_mean"] = np.zeros(cell.input_size)
        weights[f"{prefix}.input_std"] = np.ones(cell.input_size)
        for name, param in cell.named_parameters():
            value = array(param)
            weights[f"{prefix}.{name}"] = (value.reshape(-1) if name in VECTORS_AND_SCALARS
                                           else value)
    attrs = {"patch": patch, "stride": stride, "gate": cells[0].gate_nonlinearity,
             "update": cells[0].update_nonlinearity, "flat": isinstance(module, RNNPool)}
    if any(padding):
        attrs["padding"] = [int(p) for p in padding]
    name = node_name(path)
    return graph.add_node(Node(name, "rnnpool", inputs, [f"{name}_out"], attrs, weights, path))


@lowering(nn.GRU, nn.LSTM)
def lower_torch_rnn(module: nn.GRU | nn.LSTM, path: str, graph: Graph, inputs: list[str],
                    readout: str = "last",
                    normalization: tuple[np.ndarray, np.ndarray] | None = None) -> list[str]:
    """One fused ``gru`` or ``lstm`` node (normalisation of each frame, the recurrence and the
    readout, as for FastRNN). torch's stacked ``[G*H, ...]`` matrices are split per gate; the
    input and recurrent biases are summed per gate, except the GRU's ``b_in`` and ``b_hn``."""
    kind = type(module).__name__
    if module.bidirectional:
        raise KilomlError(f"cannot export {path} ({kind}): integer deployment needs a "
                          "unidirectional layer")
    if module.num_layers != 1:
        raise KilomlError(f"cannot export {path} ({kind}): integer deployment needs one layer, "
                          f"got num_layers={module.num_layers}")
    if getattr(module, "proj_size", 0):
        raise KilomlError(f"cannot export {path} ({kind}): integer deployment has no LSTM "
                          "projection (proj_size)")
    features = graph.values[inputs[0]].shape[1]
    mean, std = normalization if normalization is not None else (np.zeros(features),
                                                                  np.ones(features))
    weights = {"input_mean": mean, "input_std": std}
    weights.update({name: t.numpy().copy() for name, t in torch_rnn_gates(module).items()})
    name = node_name(path)
    return graph.add_node(Node(name, kind.lower(), inputs, [f"{name}_out"], {"readout": readout},
                               weights, path))


@lowering(nn.Linear)
def lower_linear(module: nn.Linear, path: str, graph: Graph, inputs: list[str],
                 output: str | None = None) -> list[str]:
    """A ``fully_connected`` node with an int32 output (named ``output``)."""
    bias = array(module.bias) if module.bias is not None else np.zeros(module.out_features)
    name = node_name(path)
    return graph.add_node(Node(name, "fully_connected", inputs, [output or f"{name}_out"], {},
                               {"weight": array(module.weight), "bias": bias}, path))


@lowering(SequenceClassifier)
def lower_sequence_classifier(model: SequenceClassifier, path: str, graph: Graph,
                              inputs: list[str]) -> list[str]:
    """Normalisation and readout fused into the recurrent node, then the head (logits, the
    graph's output) and the arg-max ``kiloml_predict`` returns. Frame stacking is a reshape of
    the input (the caller's ``[T][F]`` buffer read as ``[T/k][k*F]``), so the normalisation is
    tiled ``k`` times."""
    c = model.config
    k = c.frame_stack
    check_normalization(array(model.input_std))
    normalization = (np.tile(array(model.input_mean), k), np.tile(array(model.input_std), k))
    prefix = f"{path}." if path else ""
    states = lower(model.rnn, f"{prefix}rnn", graph, inputs, readout=c.readout,
                   normalization=normalization)
    lower(model.head, f"{prefix}head", graph, states, output="logits")
    graph.set_output("logits")
    return graph.add_node(Node("argmax", "argmax", ["logits"], ["class"], {}, {}, "argmax"))


@lowering(ShaRNN)
def lower_sharnn(model: ShaRNN, path: str, graph: Graph, inputs: list[str]) -> list[str]:
    """The lower RNN over bricks (``bricks_<op>``: its recurrent node run on every brick of
    ``k`` steps, normalisation fused), the upper RNN over the bricks' last states (its
    recurrent node, with an identity normalisation), the head (logits, the graph's output) and
    the arg-max ``kiloml_predict`` returns."""
    c = model.config
    check_normalization(array(model.input_std))
    prefix = f"{path}." if path else ""
    steps, features = graph.values[inputs[0]].shape
    c.check_steps(steps)
    brick = Graph()
    brick.add_input(inputs[0], (c.brick_size, features))
    lower(model.lower, f"{prefix}lower", brick, inputs, readout="last",
          normalization=(array(model.input_mean), array(model.input_std)))
    node = brick.nodes[0]
    node.op, node.attrs = f"bricks_{node.op}", {**node.attrs, "brick": c.brick_size}
    summaries = graph.add_node(node)
    states = lower(model.upper, f"{prefix}upper", graph, summaries, readout=c.readout)
    lower(model.head, f"{prefix}head", graph, states, output="logits")
    graph.set_output("logits")
    return graph.add_node(Node("argmax", "argmax", ["logits"], ["class"], {}, {}, "argmax"))


@lowering(ConvBNReLU1d)
def lower_conv_bn_relu(module: ConvBNReLU1d, path: str, graph: Graph, inputs: list[str]
                       ) -> list[str]:
    """One convolution node with the BatchNorm folded into its weight and bias (eval-mode
    statistics) and the ReLU fused: ``depthwise_conv1d`` for one kernel per channel,
    ``pointwise_conv1d`` for a 1x1 kernel without stride or padding, else ``conv1d``."""
    conv = module.conv
    padding = conv.padding if isinstance(conv.padding, tuple) else None
    if padding is None or conv.dilation != (1,) or conv.padding_mode != "zeros":
        raise KilomlError(f"cannot export {path} (Conv1d): integer deployment needs numeric "
                          "zero padding and no dilation")
    weight, bias = (array(t) for t in module.fold())
    kernel, stride, pad = conv.kernel_size[0], conv.stride[0], padding[0]
    attrs = {"kernel": kernel, "stride": stride, "pad_left": pad, "pad_right": pad,
             "activation": "relu"}
    if conv.groups == conv.in_channels == conv.out_channels and conv.groups > 1:
        op = "depthwise_conv1d"
    elif conv.groups != 1:
        raise KilomlError(f"cannot export {path} (Conv1d): grouped convolutions other than "
                          "depthwise have no integer kernel")
    elif (kernel, stride, pad) == (1, 1, 0):
        op, attrs = "pointwise_conv1d", {"activation": "relu"}
    else:
        op = "conv1d"
    name = node_name(path)
    return graph.add_node(Node(name, op, inputs, [f"{name}_out"], attrs,
                               {"weight": weight, "bias": bias}, path))


@lowering(DepthwiseSeparableBlock)
def lower_depthwise_separable(module: DepthwiseSeparableBlock, path: str, graph: Graph,
                              inputs: list[str]) -> list[str]:
    """The depthwise convolution, then the pointwise one."""
    depthwise = lower(module.depthwise, f"{path}.depthwise", graph, inputs)
    return lower(module.pointwise, f"{path}.pointwise", graph, depthwise)


@lowering(DSCNN)
def lower_dscnn(model: DSCNN, path: str, graph: Graph, inputs: list[str]) -> list[str]:
    """The whole input normalised once (the first convolution reads windows of it), the
    convolutions, the mean over time, the head (logits, the graph's output) and the arg-max
    ``kiloml_predict`` returns."""
    check_normalization(array(model.input_std))
    prefix = f"{path}." if path else ""
    x = graph.add_node(Node("normalize", "normalize", inputs, ["normalized"], {},
                            {"mean": array(model.input_mean), "std": array(model.input_std)}))
    x = lower(model.stem, f"{prefix}stem", graph, x)
    for i, block in enumerate(model.blocks):
        x = lower(block, f"{prefix}blocks.{i}", graph, x)
    x = graph.add_node(Node("pool", "global_avgpool", x, ["pooled"]))
    lower(model.head, f"{prefix}head", graph, x, output="logits")
    graph.set_output("logits")
    return graph.add_node(Node("argmax", "argmax", ["logits"], ["class"], {}, {}, "argmax"))


#: Activation modules fused into the image convolution they follow.
FUSED_ACTIVATIONS = {nn.ReLU: "relu", nn.ReLU6: "relu6"}


def fold_batchnorm2d(conv: nn.Conv2d, batchnorm: nn.BatchNorm2d | None, path: str
                     ) -> tuple[np.ndarray, np.ndarray]:
    """``(weight, bias)`` of ``conv`` with ``batchnorm``'s eval-mode statistics folded in:
    ``w · γ/sqrt(var + eps)`` per output channel, ``(b - mean) · γ/sqrt(var + eps) + β``."""
    weight = array(conv.weight)
    bias = array(conv.bias) if conv.bias is not None else np.zeros(conv.out_channels)
    if batchnorm is None:
        return weight, bias
    if batchnorm.running_mean is None or batchnorm.num_features != conv.out_channels:
        raise KilomlError(f"cannot export {path} (BatchNorm2d): folding needs running "
                          f"statistics of {conv.out_channels} channels")
    gamma = array(batchnorm.weight) if batchnorm.affine else np.ones(conv.out_channels)
    beta = array(batchnorm.bias) if batchnorm.affine else np.zeros(conv.out_channels)
    scale = gamma / np.sqrt(array(batchnorm.running_var) + batchnorm.eps)
    return (weight * scale[:, None, None, None],
            (bias - array(batchnorm.running_mean)) * scale + beta)


def lower_conv2d(conv: nn.Conv2d, path: str, graph: Graph, inputs: list[str],
                 batchnorm: nn.BatchNorm2d | None = None, activation: str = "none",
                 residual: str | None = None) -> list[str]:
    """One int8 image convolution node over the ``[C, H, W]`` value ``inputs[0]``, with
    ``batchnorm`` folded into its weight and bias and ``activation`` (none/relu/relu6) fused:
    ``depthwise_conv2d`` for one kernel per channel, ``pointwise_conv2d`` for a 1×1 kernel
    without stride or padding on an int8 map (which may add the value ``residual`` before the
    activation), else ``conv2d`` (which also reads the caller's int16 input)."""
    shape = graph.values[inputs[0]].shape
    if len(shape) != 3 or shape[0] != conv.in_channels:
        raise KilomlError(f"cannot export {path} (Conv2d): it needs a [{conv.in_channels}, H, W] "
                          f"map, got {list(shape)}")
    if (isinstance(conv.padding, str) or conv.dilation != (1, 1)
            or conv.padding_mode != "zeros"):
        raise KilomlError(f"cannot export {path} (Conv2d): integer deployment needs numeric "
                          "zero padding and no dilation")
    weight, bias = fold_batchnorm2d(conv, batchnorm, path)
    (pad_h, pad_w), kernel = conv.padding, list(conv.kernel_size)
    attrs = {"kernel": kernel, "stride": list(conv.stride),
             "padding": [pad_h, pad_h, pad_w, pad_w], "activation": activation}
    depthwise = conv.groups == conv.in_channels == conv.out_channels and conv.groups > 1
    if conv.groups != 1 and not depthwise:
        raise KilomlError(f"cannot export {path} (Conv2d): grouped convolutions other than "
                          f"depthwise have no integer kernel (groups={conv.groups})")
    pointwise = (not depthwise and kernel == [1, 1] and conv.stride == (1, 1)
                 and conv.padding == (0, 0) and graph.values[inputs[0]].dtype == "int8")
    if residual is not None and not pointwise:
        raise KilomlError(f"cannot export {path} (Conv2d): a residual add needs a 1x1 "
                          "convolution without stride or padding on an int8 map")
    if depthwise:
        op = "depthwise_conv2d"
    elif pointwise:
        op, attrs = "pointwise_conv2d", {"activation": activation}
    else:
        op = "conv2d"
    name = node_name(path)
    reads = inputs[:1] + ([residual] if residual is not None else [])
    return graph.add_node(Node(name, op, reads, [f"{name}_out"], attrs,
                               {"weight": weight, "bias": bias}, path or "Conv2d"))


@lowering(nn.Conv2d)
def lower_lone_conv2d(module: nn.Conv2d, path: str, graph: Graph, inputs: list[str]
                      ) -> list[str]:
    """A convolution without BatchNorm or activation (in an ``nn.Sequential`` the ones that
    follow it are fused: :func:`lower_image_sequential`)."""
    return lower_conv2d(module, path, graph, inputs)


@lowering(nn.Sequential)
def lower_image_sequential(module: nn.Sequential, path: str, graph: Graph, inputs: list[str],
                           **options) -> list[str]:
    """The children in order; a ``Conv2d`` takes a ``BatchNorm2d`` and then a ``ReLU``/
    ``ReLU6`` that directly follow it into its node. ``options`` (e.g. the output's name) go
    to the last child."""
    children = list(module.named_children())
    x, i = inputs, 0
    while i < len(children):
        name, child = children[i]
        child_path = f"{path}.{name}" if path else name
        i += 1
        if not isinstance(child, nn.Conv2d):
            x = lower(child, child_path, graph, x, **(options if i == len(children) else {}))
            continue
        batchnorm, activation = None, "none"
        if i < len(children) and isinstance(children[i][1], nn.BatchNorm2d):
            batchnorm, i = children[i][1], i + 1
        if i < len(children) and type(children[i][1]) in FUSED_ACTIVATIONS:
            activation, i = FUSED_ACTIVATIONS[type(children[i][1])], i + 1
        x = lower_conv2d(child, child_path, graph, x, batchnorm, activation)
    return x


@lowering(nn.BatchNorm2d, nn.ReLU, nn.ReLU6)
def lower_unfused(module: nn.Module, path: str, graph: Graph, inputs: list[str]) -> list[str]:
    """BatchNorm2d and ReLU/ReLU6 exist only folded into the Conv2d just before them."""
    raise KilomlError(f"cannot export {path or 'the model'} ({type(module).__name__}): it must "
                      "directly follow a Conv2d (in an nn.Sequential) to be folded into it")


@lowering(nn.Identity, nn.Dropout)
def lower_identity(module: nn.Module, path: str, graph: Graph, inputs: list[str]) -> list[str]:
    """Nothing at inference."""
    return inputs


@lowering(nn.Flatten)
def lower_flatten(module: nn.Flatten, path: str, graph: Graph, inputs: list[str]) -> list[str]:
    """Nothing after a global average pooling (its output is already the vector ``[C]``)."""
    if len(graph.values[inputs[0]].shape) != 1:
        raise KilomlError(f"cannot export {path} (Flatten): integer deployment flattens only "
                          "the vector of a global average pooling (AdaptiveAvgPool2d(1))")
    return inputs


def pool_attrs(module: nn.AvgPool2d | nn.MaxPool2d, path: str) -> dict:
    """``kernel``, ``stride``, ``padding`` of a torch pooling module (``ceil_mode`` off)."""
    def pair(value) -> list[int]:
        return list(value) if isinstance(value, tuple | list) else [value, value]

    if module.ceil_mode or getattr(module, "divisor_override", None) is not None \
            or pair(getattr(module, "dilation", 1)) != [1, 1]:
        raise KilomlError(f"cannot export {path} ({type(module).__name__}): integer deployment "
                          "needs ceil_mode=False, no dilation and no divisor_override")
    kernel = pair(module.kernel_size)
    stride = pair(module.stride) if module.stride else kernel
    (pad_h, pad_w) = pair(module.padding)
    return {"kernel": kernel, "stride": stride, "padding": [pad_h, pad_h, pad_w, pad_w]}


@lowering(nn.AvgPool2d, nn.MaxPool2d)
def lower_pool2d(module: nn.AvgPool2d | nn.MaxPool2d, path: str, graph: Graph,
                 inputs: list[str]) -> list[str]:
    """An ``avgpool2d`` or ``maxpool2d`` node (the map's Q-format kept)."""
    op = "avgpool2d" if isinstance(module, nn.AvgPool2d) else "maxpool2d"
    name = node_name(path)
    return graph.add_node(Node(name, op, inputs, [f"{name}_out"], pool_attrs(module, path), {},
                               path))


@lowering(nn.AdaptiveAvgPool2d)
def lower_adaptive_avgpool2d(module: nn.AdaptiveAvgPool2d, path: str, graph: Graph,
                             inputs: list[str]) -> list[str]:
    """``AdaptiveAvgPool2d(1)``: a ``global_avgpool2d`` node, the int16 vector ``[C]``."""
    size = module.output_size
    if size not in (1, (1, 1), [1, 1]):
        raise KilomlError(f"cannot export {path} (AdaptiveAvgPool2d): integer deployment needs "
                          f"output_size 1, got {size}")
    name = node_name(path)
    return graph.add_node(Node(name, "global_avgpool2d", inputs, [f"{name}_out"], {}, {}, path))


def lower_image_model(model: nn.Module, shape: tuple[int, int, int], num_classes: int
                      ) -> Graph:
    """The float graph of an image classifier on the caller's int16 ``[C, H, W]`` input
    (``quantize_input`` of ``[N, C, H, W]``): the model's nodes, its last value the graph's
    output (the logits), then the arg-max ``kiloml_predict`` returns."""
    graph = Graph(meta={"kind": "image", "frame_stack": 1, "raw_input_shape": list(shape),
                        "num_classes": num_classes})
    graph.add_input("x", tuple(shape))
    (logits,) = lower(model, "", graph, ["x"])
    if graph.values[logits].shape != (num_classes,):
        raise KilomlError(f"the model's output {list(graph.values[logits].shape)} is not the "
                          f"{num_classes} logits of an image classifier")
    graph.set_output(logits)
    graph.add_node(Node("argmax", "argmax", [logits], ["class"], {}, {}, "argmax"))
    return graph


@lowering(ConvBN)
def lower_conv_bn(module: ConvBN, path: str, graph: Graph, inputs: list[str],
                  residual: str | None = None) -> list[str]:
    """MobileNetV2's convolution with its BatchNorm folded and ReLU6 fused (one node named
    after ``path``); ``residual`` is added by a block's projection."""
    return lower_conv2d(module.conv, path, graph, inputs, module.bn,
                        "relu6" if module.activation else "none", residual)


@lowering(InvertedResidual)
def lower_inverted_residual(block: InvertedResidual, path: str, graph: Graph,
                            inputs: list[str]) -> list[str]:
    """Expand (if any), depthwise, then the projection adding the block's input when the block
    has its residual."""
    x = inputs
    for name, conv in block.convolutions():
        x = lower_conv_bn(conv, f"{path}.{name}", graph, x,
                          residual=inputs[0] if name == "project" and block.residual else None)
    return x


@lowering(MobileNetV2, RNNPoolMobileNetV2)
def lower_mobilenetv2(model: MobileNetV2, path: str, graph: Graph, inputs: list[str]
                      ) -> list[str]:
    """The stem with the normalisation's ``1/std`` folded into its weights (the graph's input
    is the image minus the per-channel mean, ``graph.meta["input_offset"]``: zero padding of
    that map is zero padding of the normalised one, so the fold is exact), RNNPool on the
    stem's map zero-padded as the module pads it (RNNPool-MobileNetV2: it reads the int8 map
    as int16), the inverted residual blocks, the last 1×1 convolution, the mean over the map
    (``global_avgpool2d``), the head (the logits, the graph's output) and the arg-max
    ``kiloml_predict`` returns."""
    std = array(model.input_std)
    check_normalization(std)
    graph.meta["input_offset"] = array(model.input_mean).tolist()
    x = lower_conv_bn(model.stem, "stem", graph, inputs)
    graph.nodes[-1].weights["weight"] = graph.nodes[-1].weights["weight"] / std[None, :, None,
                                                                              None]
    if isinstance(model, RNNPoolMobileNetV2):
        left, right, top, bottom = model.padding()
        x = lower_rnnpool(model.rnnpool, "rnnpool", graph, x, (top, bottom, left, right))
    for i, block in enumerate(model.blocks):
        x = lower(block, f"blocks.{i}", graph, x)
    x = lower_conv_bn(model.last, "last", graph, x)
    x = graph.add_node(Node("mean", "global_avgpool2d", x, ["pooled"], {}, {}, "mean"))
    lower_linear(model.head, "head", graph, x, output="logits")
    graph.set_output("logits")
    return graph.add_node(Node("argmax", "argmax", ["logits"], ["class"], {}, {}, "argmax"))


def lower_projection(model: ProtoNN | Bonsai, graph: Graph, inputs: list[str], name: str
                     ) -> list[str]:
    """ProtoNN's and Bonsai's first layer: a ``normalize`` node unless the normalisation is
    folded into the projection, then the ``projection`` node."""
    check_normalization(array(model.input_std))
    x = inputs
    if not model.folds_normalization:
        x = graph.add_node(Node("normalize", "normalize", x, ["normalized"], {},
                                {"mean": array(model.input_mean), "std": array(model.input_std)}))
    weight, bias = (t.numpy().copy() for t in model.deployed_projection())
    return graph.add_node(Node("projection", "projection", x, ["projected"], {},
                               {"weight": weight, "bias": bias}, name))


@lowering(Bonsai)
def lower_bonsai(model: Bonsai, path: str, graph: Graph, inputs: list[str]) -> list[str]:
    """The projection ``Z`` (normalisation folded in, or a ``normalize`` node first), the
    tree's path (``tree_path``, with ``sigma`` folded into every ``V_k``; its scores are the
    graph's output) and the arg-max ``kiloml_predict`` returns."""
    c = model.config
    x = lower_projection(model, graph, inputs, "Z")
    theta = array(model.theta) if c.internal_nodes else np.zeros((1, c.projection_dim))
    graph.add_node(Node("tree", "tree_path", x, ["logits"], {"depth": c.depth},
                        {"W": array(model.W), "V": c.sigma * array(model.V), "theta": theta},
                        "tree"))
    graph.set_output("logits")
    return graph.add_node(Node("argmax", "argmax", ["logits"], ["class"], {}, {}, "argmax"))


@lowering(ProtoNN)
def lower_protonn(model: ProtoNN, path: str, graph: Graph, inputs: list[str]) -> list[str]:
    """The projection with the normalisation folded in (``projection``; with per-feature
    scaling a ``normalize`` node comes first), the RBF similarities
    to the prototypes (``rbf``), the label vectors ``Z`` (``fully_connected`` with a zero bias:
    the scores, the graph's output) and the arg-max ``kiloml_predict`` returns."""
    x = lower_projection(model, graph, inputs, "W")
    x = graph.add_node(Node("rbf", "rbf", x, ["similarities"], {},
                            {"prototypes": array(model.B).T.copy(),
                             "gamma2": array(model.gamma) ** 2}, "B"))
    graph.add_node(Node("scores", "fully_connected", x, ["logits"], {},
                        {"weight": array(model.Z), "bias": np.zeros(model.config.num_classes)},
                        "Z"))
    graph.set_output("logits")
    return graph.add_node(Node("argmax", "argmax", ["logits"], ["class"], {}, {}, "argmax"))


@lowering(EMIFastGRNN)
def lower_emi_fastgrnn(model: EMIFastGRNN, path: str, graph: Graph, inputs: list[str]
                       ) -> list[str]:
    """One instance read to its last step: the FastGRNN (normalisation fused, last state),
    the head (logits of the data's classes and noise, the graph's output) and the arg-max
    ``kiloml_predict`` returns. The streaming form with early exit reads the same nodes step
    by step (:mod:`kiloml.ir.early_exit`)."""
    check_normalization(array(model.input_std))
    prefix = f"{path}." if path else ""
    states = lower(model.rnn, f"{prefix}rnn", graph, inputs, readout="last",
                   normalization=(array(model.input_mean), array(model.input_std)))
    lower(model.head, f"{prefix}head", graph, states, output="logits")
    graph.set_output("logits")
    return graph.add_node(Node("argmax", "argmax", ["logits"], ["class"], {}, {}, "argmax"))


def check_normalization(std: np.ndarray) -> None:
    """A one-line error unless every feature's standard deviation is positive and finite."""
    if not np.all(np.isfinite(std) & (std > 0)):
        raise KilomlError("input_std must be positive and finite for every feature; refit the "
                          "normalisation on the training split")


def early_exit_meta(config, steps: int) -> dict:
    """An EMI-FastGRNN's streaming settings for windows (bags) of ``steps`` frames: instance
    ``width`` and ``stride``, ``instances`` per window, exit ``threshold``, ``noise`` class."""
    width, stride = config.instance_width, config.instance_stride
    if width > steps:
        raise KilomlError(f"instance width {width} is longer than the {steps}-step windows")
    return {"width": width, "stride": stride, "instances": 1 + (steps - width) // stride,
            "threshold": config.exit_threshold, "noise": config.noise_class}


def lower_model(model: nn.Module, steps: int) -> Graph:
    """The float graph of a trained classifier for sequences of ``steps`` raw frames.

    The graph's input is ``[steps / k, k * features]`` for frame stacking ``k`` (the same
    memory as the raw ``[steps, features]``); ``graph.meta`` records the kind, ``k`` and the
    raw shape. An EMI-FastGRNN's input is one instance ``[width, features]`` and
    ``meta["early_exit"]`` its streaming settings (:func:`early_exit_meta`)."""
    config = model.config
    if hasattr(config, "image_shape"):
        return lower_image_family(model)
    k = getattr(config, "frame_stack", 1)
    if steps % k:
        raise KilomlError(f"frame-stack {k} needs a number of steps divisible by {k}, "
                          f"got {steps}")
    graph = Graph(meta={"kind": config.kind, "frame_stack": k,
                        "raw_input_shape": [steps, config.input_size],
                        "num_classes": config.num_classes})
    if config.kind == "emi-fastgrnn":  # the graph reads one instance of a window of steps
        graph.meta["early_exit"] = early_exit_meta(config, steps)
        steps = config.instance_width
        graph.meta["raw_input_shape"] = [steps, config.input_size]
    graph.add_input("x", (steps // k, k * config.input_size))
    lower(model, "", graph, ["x"])
    return graph


def lower_image_family(model: nn.Module) -> Graph:
    """The float graph of a trained image family (``config.image_shape`` ``(C, H, W)``) on
    the caller's int16 ``[C, H, W]`` input, the image minus the per-channel mean
    (:func:`kiloml.ir.quantize.image_input` converts kiloml's image rows)."""
    config = model.config
    graph = Graph(meta={"kind": config.kind, "frame_stack": 1, "image_rows": True,
                        "raw_input_shape": [config.height, config.input_size],
                        "num_classes": config.num_classes})
    graph.add_input("x", tuple(config.image_shape))
    lower(model, "", graph, ["x"])
    return graph
