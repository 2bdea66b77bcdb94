"""The integer graph: values and op nodes in execution order.

A graph has one input value (the caller's buffer, int16 features), nodes that each apply one
op of :mod:`kiloml.ops`, one output value (the caller's buffer, e.g. int32 logits) and
optionally a ``return`` value (the class ``kiloml_predict`` returns). Every other value lives in
the arena. The same object is the float graph (``node.weights``) and, after
:func:`kiloml.ir.quantize.quantize_graph`, the integer graph (``node.q``, ``node.consts`` and
every value's Q-format).
"""

from dataclasses import dataclass, field

from kiloml.ops import get_op
from kiloml.ops.base import Node, Value


@dataclass
class Graph:
    """Values by name, nodes in execution order, and ``meta`` (model kind, frame stacking,
    the raw input shape, weight bits once quantized)."""

    values: dict[str, Value] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)
    input: str = "x"
    output: str = ""
    meta: dict = field(default_factory=dict)

    def add_input(self, name: str, shape: tuple[int, ...], dtype: str = "int16") -> str:
        self.values[name] = Value(name, tuple(shape), dtype, storage="input")
        self.input = name
        return name

    def add_node(self, node: Node) -> list[str]:
        """Append ``node``; its output values come from the op's shape inference."""
        if any(n.name == node.name for n in self.nodes):
            raise ValueError(f"duplicate node name {node.name!r}")
        missing = [name for name in node.inputs if name not in self.values]
        if missing:
            raise ValueError(f"node {node.name}: unknown inputs {missing}")
        outputs = get_op(node.op).infer(node, [self.values[n] for n in node.inputs])
        for value in outputs:
            self.values[value.name] = value
        self.nodes.append(node)
        return [value.name for value in outputs]

    def set_output(self, name: str) -> None:
        self.values[name].storage = "output"
        self.output = name

    def node_values(self, node: Node) -> tuple[list[Value], list[Value]]:
        """``(input values, output values)`` of ``node``."""
        return [self.values[n] for n in node.inputs], [self.values[n] for n in node.outputs]

    @property
    def return_value(self) -> str | None:
        """The value ``kiloml_predict`` returns (an arg-max), if any."""
        returns = [v.name for v in self.values.values() if v.storage == "return"]
        return returns[0] if returns else None

    def ops(self) -> list[str]:
        """The ops the graph uses, in first-use order (with those of the nodes a ``tiled``
        node holds, after it)."""
        seen: list[str] = []
        for node in self.nodes:
            for op in [node.op, *(inner.op for inner in node.attrs.get("nodes", ()))]:
                if op not in seen:
                    seen.append(op)
        return seen

    def flash_bytes(self) -> int:
        """Stored bytes of all constants: the sum of the ops' flash accounting."""
        return sum(get_op(n.op).flash_bytes(n) for n in self.nodes)

    def macs(self) -> int:
        """Multiply-accumulates of one inference: the sum over the ops."""
        return sum(get_op(n.op).macs(n, *self.node_values(n)) for n in self.nodes)

    def storage(self) -> dict[str, dict]:
        """Per stored tensor, as ``node.tensor``: format, bytes, bits (and nonzeros)."""
        return {f"{node.name}.{name}": entry for node in self.nodes
                for name, entry in get_op(node.op).storage(node).items()}
