"""Integer operators: one module per op, each the numpy spec of its C kernel in
``deploy/c/ops`` (see :mod:`kiloml.ops.base`). Importing this package registers them all."""

from kiloml.ops import (  # noqa: F401
    activation_layer,
    argmax,
    avgpool2d,
    bricks,
    conv1d,
    conv2d,
    depthwise_conv1d,
    depthwise_conv2d,
    fastgrnn,
    fully_connected,
    global_avgpool,
    global_avgpool2d,
    gru,
    lstm,
    maxpool2d,
    normalize,
    pointwise_conv1d,
    pointwise_conv2d,
    projection,
    rbf,
    rnnpool,
    tree_path,
)
from kiloml.ops.base import OPS, Buffer, Emitted, Node, Op, Value, get_op

__all__ = ["OPS", "Buffer", "Emitted", "Node", "Op", "Value", "get_op"]
