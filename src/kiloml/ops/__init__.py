"""Integer operators: one module per op, each the numpy spec of its C kernel in
``deploy/c/ops`` (see :mod:`kiloml.ops.base`). Importing this package registers them all."""

from kiloml.ops import (  # noqa: F401
    activation_layer,
    argmax,
    fastgrnn,
    fully_connected,
    gru,
    lstm,
    normalize,
)
from kiloml.ops.base import OPS, Buffer, Emitted, Node, Op, Value, get_op

__all__ = ["OPS", "Buffer", "Emitted", "Node", "Op", "Value", "get_op"]
