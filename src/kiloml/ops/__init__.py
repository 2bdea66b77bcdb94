"""Integer operators: one module per op, each the numpy spec of its C kernel in
``deploy/c/ops`` (see :mod:`kiloml.ops.base`). Importing this package registers them all."""

from kiloml.ops import (  # noqa: F401
    activation_layer,
    argmax,
    bricks,
    conv1d,
    depthwise_conv1d,
    fastgrnn,
    fully_connected,
    global_avgpool,
    gru,
    lstm,
    normalize,
    pointwise_conv1d,
    projection,
    rbf,
    rnnpool,
    tree_path,
)
from kiloml.ops.base import OPS, Buffer, Emitted, Node, Op, Value, get_op

__all__ = ["OPS", "Buffer", "Emitted", "Node", "Op", "Value", "get_op"]
