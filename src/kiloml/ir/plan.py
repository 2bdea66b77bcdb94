"""The arena planner: one block of caller-owned RAM holds every intermediate value and every
op's working buffers, at offsets chosen from their lifetimes.

A value lives from the node that writes it to the last node that reads it; an op's buffer
lives during its node only. Two blocks may share bytes when their lifetimes do not overlap.
Blocks are placed greedily (TensorFlow Lite Micro's greedy planner: the largest first, each at
the lowest offset aligned to its element size that overlaps no live block); a second pass
orders by alignment first, a third by lifetime (the longest-lived first: a residual block's
input, alive across the block, goes below its maps), and the smallest peak is kept. The
arena's size, the planner's peak, is rounded up to four bytes.
"""

from dataclasses import dataclass

from kiloml.ir.graph import Graph
from kiloml.ops import get_op
from kiloml.ops.base import DTYPE_BYTES


@dataclass(frozen=True)
class Block:
    """One allocation: a value (``buffer`` empty) or buffer ``buffer`` of node ``owner``."""

    owner: str
    buffer: str
    nbytes: int
    align: int
    first: int
    last: int


@dataclass
class ArenaPlan:
    """Offsets of every block and the arena's size in bytes."""

    offsets: dict[tuple[str, str], int]
    blocks: list[Block]
    peak: int

    def value_offset(self, value: str) -> int:
        return self.offsets[(value, "")]

    def buffer_offset(self, node: str, buffer: str) -> int:
        return self.offsets[(node, buffer)]


def arena_blocks(graph: Graph) -> list[Block]:
    """Every arena value and op buffer with its lifetime (node indices, inclusive)."""
    blocks = []
    producers = {name: i for i, node in enumerate(graph.nodes) for name in node.outputs}
    for name, value in graph.values.items():
        if value.storage != "arena" or value.nbytes == 0:
            continue
        readers = [i for i, node in enumerate(graph.nodes) if name in node.inputs]
        first = producers[name]
        blocks.append(Block(name, "", value.nbytes, DTYPE_BYTES[value.dtype], first,
                            max(readers, default=first)))
    for i, node in enumerate(graph.nodes):
        for buffer in get_op(node.op).buffers(node, *graph.node_values(node)):
            if buffer.nbytes:
                blocks.append(Block(node.name, buffer.name, buffer.nbytes,
                                    DTYPE_BYTES[buffer.dtype], i, i))
    return blocks


def _place(blocks: list[Block]) -> tuple[dict[tuple[str, str], int], int]:
    offsets: dict[tuple[str, str], int] = {}
    placed: list[tuple[Block, int]] = []
    for block in blocks:
        live = sorted((offset, offset + other.nbytes) for other, offset in placed
                      if other.first <= block.last and block.first <= other.last)
        offset = 0
        for start, end in live:
            if offset + block.nbytes <= start:
                break
            offset = max(offset, -(-end // block.align) * block.align)
        offsets[(block.owner, block.buffer)] = offset
        placed.append((block, offset))
    peak = max((offset + block.nbytes for block, offset in placed), default=0)
    return offsets, peak


def plan_arena(graph: Graph) -> ArenaPlan:
    """Offsets for every block of ``graph`` and the arena size (a multiple of 4 bytes)."""
    return plan_blocks(arena_blocks(graph))


def plan_blocks(blocks: list[Block]) -> ArenaPlan:
    """Offsets for ``blocks`` (the three greedy orders, the smallest peak kept) and the arena
    size (a multiple of 4 bytes)."""
    orders = (sorted(blocks, key=lambda b: (-b.nbytes, b.first)),
              sorted(blocks, key=lambda b: (-b.align, -b.nbytes, b.first)),
              sorted(blocks, key=lambda b: (b.first - b.last, -b.nbytes, b.first)))
    best = min((_place(order) for order in orders), key=lambda result: result[1])
    return ArenaPlan(best[0], blocks, max(4, (best[1] + 3) // 4 * 4))
