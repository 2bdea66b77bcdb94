"""The schedules of a trained image model and the planner's choice within each.

Which schedules apply (:func:`applicable`):

* ``layers`` — always;
* ``patches`` (MCUNetV2) — a graph whose first node is a convolution over the int16 input and
  which has no RNNPool: its first nodes (stem and blocks, a chain up to a block's end) run as
  one tiled stage on a grid of 2×2, 3×3 or 4×4 tiles, and optionally the next block as a second
  tiled stage over whole rows of its output (as for ``rnnpool``);
* ``rnnpool`` — a graph with an ``rnnpool`` node in its leading chain (RNNPool-MobileNetV2:
  stem → RNNPool): the stem and RNNPool run patch by patch (a tiled stage ending at RNNPool,
  its tiles a few RNNPool output pixels, the stem recomputed where RNNPool's patches overlap),
  and optionally the next block as a second tiled stage over whole rows of its output, reading
  RNNPool's map in place of the whole block's maps.

Within a schedule the candidates (:func:`candidates`) are tried through the arena planner and
the one with the smallest planned arena is kept, fewer MACs breaking ties
(:func:`plan_schedule`); the default of ``kiloml export`` is the schedule whose choice plans
the smallest arena (:func:`default_schedule`). Every candidate gives the same integers (the
tiles read the same windows with the same weights).
"""

from dataclasses import dataclass

from kiloml.errors import KilomlError
from kiloml.ir.graph import Graph
from kiloml.ir.plan import plan_arena
from kiloml.ir.tiled import make_tiled

#: Tiles per side of a patch stage's output map tried by ``patches``.
PATCH_GRIDS = (2, 3, 4)
#: Sides (RNNPool output pixels) of the square tiles of the stem + RNNPool stage.
RNNPOOL_TILES = (1, 2, 3)
#: Output rows per tile of the block after the first stage (whole rows), and its nodes at
#: most (an inverted residual block: expand, depthwise, project).
BLOCK_ROWS = (1, 2, 3)
BLOCK_NODES = 3


@dataclass(frozen=True)
class Stage:
    """Nodes ``first .. first + count - 1`` tiled with ``patch`` ``(rows, cols)`` output
    pixels."""

    first: int
    count: int
    patch: tuple[int, int]


def _rnnpool_index(graph: Graph) -> int | None:
    """The index of the first ``rnnpool`` node if the nodes before it are a chain from the
    input."""
    previous = graph.input
    for i, node in enumerate(graph.nodes):
        if not node.inputs or node.inputs[0] != previous:
            return None
        if node.op == "rnnpool":
            return None if node.attrs.get("flat") else i
        previous = node.outputs[0]
    return None


def applicable(graph: Graph) -> list[str]:
    """The schedules that apply to the quantized (or float) image ``graph``."""
    out = ["layers"]
    first = graph.nodes[0] if graph.nodes else None
    if _rnnpool_index(graph) is not None:
        out.append("rnnpool")
    elif (first is not None and first.op == "conv2d" and first.inputs[0] == graph.input
          and not any(n.op == "rnnpool" for n in graph.nodes)):
        out.append("patches")
    return out


def tile_stages(graph: Graph, stages: list[Stage], kind: str) -> Graph:
    """``graph`` with every stage tiled (stages in node order, not overlapping); its
    ``meta["schedule"]`` names the kind and the stages."""
    scheduled = graph
    for i, stage in sorted(enumerate(stages), key=lambda item: -item[1].first):
        scheduled = make_tiled(scheduled, stage.count, stage.patch,
                               name="tiled" if i == 0 else f"tiled{i + 1}", first=stage.first)
    scheduled = Graph(dict(scheduled.values), list(scheduled.nodes), scheduled.input,
                      scheduled.output, dict(scheduled.meta))
    scheduled.meta["schedule"] = {
        "kind": kind, "stages": [{"first": s.first, "nodes": s.count, "patch": list(s.patch)}
                                 for s in stages]}
    if len(stages) == 1:
        scheduled.meta["schedule"].update(nodes=stages[0].count, patch=list(stages[0].patch))
    return scheduled


def chain_ends(graph: Graph, start: int) -> list[int]:
    """Node counts ``k`` such that nodes ``start .. start + k - 1`` can form one tiled stage
    (a chain whose inner maps are not read later, ending on a ``[C, H, W]`` map)."""
    ends = []
    for count in range(1, len(graph.nodes) - start + 1):
        try:
            make_tiled(graph, count, (1, 1), first=start)
        except KilomlError as error:
            if "does not apply to node" in str(error) or "at most" in str(error):
                break  # a non-windowed node or too long: no longer chain
            continue
        ends.append(count)
    return ends


def _side(graph: Graph, first: int, count: int) -> tuple[int, int]:
    """Rows and columns of the map nodes ``first .. first + count - 1`` end on."""
    _, rows, cols = graph.values[graph.nodes[first + count - 1].outputs[0]].shape
    return rows, cols


def candidates(graph: Graph, kind: str) -> list[list[Stage]]:
    """The stage lists the planner tries for ``kind`` (see the module docstring)."""
    if kind not in applicable(graph):
        raise KilomlError(f"the {kind} schedule does not apply to this model; it takes "
                          f"{' or '.join(applicable(graph))}")
    if kind == "layers":
        return [[]]
    if kind == "patches":
        out = []
        for count in chain_ends(graph, 0):
            rows, cols = _side(graph, 0, count)
            firsts = [Stage(0, count, (-(-rows // grid), -(-cols // grid)))
                      for grid in PATCH_GRIDS if rows >= 2 * grid and cols >= 2 * grid]
            out += [[stage] for stage in firsts] + _with_next_block(graph, firsts)
        return out
    pool = _rnnpool_index(graph)
    rows, cols = _side(graph, 0, pool + 1)
    firsts = [Stage(0, pool + 1, (min(t, rows), min(t, cols))) for t in RNNPOOL_TILES]
    return [[stage] for stage in firsts] + _with_next_block(graph, firsts)


def _with_next_block(graph: Graph, firsts: list[Stage]) -> list[list[Stage]]:
    """Each first stage followed by the next block (the longest chain of at most
    ``BLOCK_NODES`` nodes after it) as a second stage over whole rows of its output map."""
    if not firsts:
        return []
    start = firsts[0].first + firsts[0].count
    block = [c for c in chain_ends(graph, start) if c <= BLOCK_NODES] if start < len(
        graph.nodes) else []
    out = []
    for count in block[-1:]:
        block_rows, block_cols = _side(graph, start, count)
        out += [[stage, Stage(start, count, (r, block_cols))] for r in BLOCK_ROWS
                if r < block_rows for stage in firsts]
    return out


def plan_schedule(graph: Graph, kind: str) -> tuple[Graph, int]:
    """``(scheduled graph, planned arena bytes)`` of the candidate of ``kind`` with the
    smallest arena (fewer MACs on ties)."""
    best = None
    for stages in candidates(graph, kind):
        scheduled = tile_stages(graph, stages, kind) if stages else graph
        key = (plan_arena(scheduled).peak, scheduled.macs())
        if best is None or key < best[0]:
            best = (key, scheduled)
    if best is None:
        raise KilomlError(f"the {kind} schedule does not apply: the model's first maps are too "
                          "small to tile")
    return best[1], best[0][0]


def plan_schedules(graph: Graph) -> dict[str, tuple[Graph, int]]:
    """Every applicable schedule's planned graph and arena bytes."""
    out = {}
    for kind in applicable(graph):
        try:
            out[kind] = plan_schedule(graph, kind)
        except KilomlError:
            if kind == "layers":
                raise
    return out


def default_schedule(planned: dict[str, tuple[Graph, int]]) -> str:
    """The schedule with the smallest planned arena (the earlier in ``layers``, ``patches``,
    ``rnnpool`` on ties)."""
    return min(planned, key=lambda kind: planned[kind][1])
