"""What an integer operator is: the data a graph node carries and the interface every op
implements.

An op is one module of :mod:`kiloml.ops` with one C kernel in ``deploy/c/ops``. Its class
gives, for a :class:`Node`:

* ``infer`` — the output values' shapes and types from the inputs';
* ``float_forward`` — the float64 computation the float graph runs (calibration records the
  largest magnitude of every intermediate through ``record``);
* ``quantize`` — its quantization rule: integer tensors, shifts and constants into ``node.q``
  and ``node.consts``, the Q-formats of its outputs;
* ``simulate`` — its integer spec, batch-first, integer for integer what the C kernel computes;
* ``buffers``, ``flash_bytes``, ``macs`` — its working memory in the arena, its stored bytes
  and its multiply-accumulates;
* ``emit`` — its C: constant arrays and a params struct, and the call.

Values are per inference (no batch axis); the simulator adds a leading batch axis.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from kiloml.ops.fixed import QTensor

DTYPE_BYTES = {"int8": 1, "int16": 2, "int32": 4}
C_TYPES = {"int8": "int8_t", "int16": "int16_t", "int32": "int32_t"}


@dataclass
class Value:
    """A tensor flowing between ops: ``shape`` per inference, integer ``dtype`` and, once
    quantized, its Q-format. ``storage`` says who owns it: the caller (``input``, ``output``),
    the arena, or the return value of ``kiloml_predict`` (``return``)."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "int16"
    frac_bits: int | None = None
    storage: str = "arena"

    @property
    def count(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.count * DTYPE_BYTES[self.dtype]

    def to_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype,
                "frac_bits": self.frac_bits, "storage": self.storage}

    @classmethod
    def from_dict(cls, data: dict) -> "Value":
        return cls(data["name"], tuple(data["shape"]), data["dtype"], data["frac_bits"],
                   data["storage"])


@dataclass
class Node:
    """One op application. ``path`` is the torch module it was lowered from (for messages);
    ``attrs`` are JSON-able settings, ``weights`` float64 arrays; quantization fills ``q``
    (integer tensors) and ``consts`` (integer shifts, formats and constants)."""

    name: str
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict = field(default_factory=dict)
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    path: str = ""
    q: dict[str, QTensor] = field(default_factory=dict)
    consts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Buffer:
    """Working memory an op needs during its call only: ``count`` elements of ``dtype``."""

    name: str
    dtype: str
    count: int

    @property
    def nbytes(self) -> int:
        return self.count * DTYPE_BYTES[self.dtype]


@dataclass
class Emitted:
    """An op's C: ``definitions`` (constant arrays and its params struct, at file scope) and
    ``call`` (statements inside ``kiloml_predict``)."""

    definitions: str
    call: str


class EmitContext:
    """What codegen tells an op about names and memory: ``symbol(suffix)`` is a file-scope C
    name for this node, ``pointer(value)`` the C expression of a value's buffer, and
    ``buffer(name)`` that of one of the op's :class:`Buffer`."""

    def __init__(self, node: Node, symbol: Callable[[str], str], pointer: Callable[[str], str],
                 buffer: Callable[[str], str]):
        self.node = node
        self.symbol = symbol
        self.pointer = pointer
        self.buffer = buffer


Record = Callable[[str, np.ndarray], None]


class Op:
    """Base class of the integer operators (see the module docstring)."""

    #: Name nodes use to refer to the op.
    name: ClassVar[str] = ""
    #: C files of the op's kernel and what it calls (besides kl_fixed.h and kl_constants.h).
    c_files: ClassVar[tuple[str, ...]] = ()

    def infer(self, node: Node, inputs: list[Value]) -> list[Value]:
        raise NotImplementedError

    def float_forward(self, node: Node, inputs: list[np.ndarray], record: Record
                      ) -> list[np.ndarray]:
        raise NotImplementedError

    def quantize(self, node: Node, inputs: list[Value], outputs: list[Value],
                 ranges: Callable[[str], float], bits: int) -> None:
        raise NotImplementedError

    def simulate(self, node: Node, inputs: list[np.ndarray], in_values: list[Value],
                 out_values: list[Value]) -> list[np.ndarray]:
        raise NotImplementedError

    def buffers(self, node: Node, inputs: list[Value], outputs: list[Value]) -> list[Buffer]:
        return []

    def flash_bytes(self, node: Node) -> int:
        """Bytes of constants in flash: the sum over :meth:`storage`."""
        return sum(entry["bytes"] for entry in self.storage(node).values())

    def storage(self, node: Node) -> dict[str, dict]:
        """Per stored tensor: format, bytes, bits (and nonzeros for matrices)."""
        return {}

    def macs(self, node: Node, inputs: list[Value], outputs: list[Value]) -> int:
        raise NotImplementedError

    def emit(self, node: Node, inputs: list[Value], outputs: list[Value],
             c: EmitContext) -> Emitted:
        raise NotImplementedError

    def c_switches(self, node: Node) -> set[str]:
        """Optional parts of the C library the node's kernel uses: names of the switches of
        the generated ``kl_model_config.h`` (``deploy/c/templates/kl_model_config.h.in``) set
        to 1 for this model; every other switch is 0."""
        return set()


OPS: dict[str, Op] = {}


def register(cls: type[Op]) -> type[Op]:
    """Class decorator: make ``cls`` the op named ``cls.name``."""
    OPS[cls.name] = cls()
    return cls


def get_op(name: str) -> Op:
    """The registered op ``name``."""
    if name not in OPS:
        raise KeyError(f"unknown op {name!r}")
    return OPS[name]
