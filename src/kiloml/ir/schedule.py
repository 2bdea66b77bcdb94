"""Schedules of a quantized image graph: how its first stages run, and what RAM that needs.

* ``layers`` — every node over whole maps (the graph as lowered); the planner's peak is the
  largest set of whole maps alive together.
* ``patches`` — MCUNetV2-style patch-based inference: the first ``stage`` nodes (a chain of
  windowed image ops from the input) run tile by tile (:mod:`kiloml.ir.tiled`), so their RAM
  is one tile's working set plus the stage's output map, at the price of recomputing the
  overlapping receptive fields.
* ``rnnpool`` — a graph whose first node is an ``rnnpool`` over the input: RNNPool already
  reads one patch window at a time and writes the ``4·h2`` channels of one output pixel
  (its working memory is one patch's summaries, :mod:`kiloml.ops.rnnpool`); with ``stage``
  and ``patch`` the nodes after it are tiled as for ``patches``.

The same integers come out of every schedule (the simulator runs the tiles).
"""

from kiloml.errors import KilomlError
from kiloml.ir.graph import Graph
from kiloml.ir.plan import plan_arena
from kiloml.ir.tiled import make_tiled

SCHEDULES = ("layers", "patches", "rnnpool")


def apply_schedule(graph: Graph, schedule: str, stage: int | None = None,
                   patch: tuple[int, int] | None = None) -> Graph:
    """The quantized ``graph`` under ``schedule`` (see the module docstring); ``stage`` is the
    number of leading nodes tiled and ``patch`` the tile size in the stage output's pixels."""
    if schedule not in SCHEDULES:
        raise KilomlError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
    if schedule == "layers":
        return graph
    first = graph.nodes[0] if graph.nodes else None
    if schedule == "rnnpool":
        if first is None or first.op != "rnnpool" or first.inputs[0] != graph.input:
            op = first.op if first is not None else "nothing"
            raise KilomlError(f"the rnnpool schedule does not apply: the graph's first node is "
                              f"{op}, not an RNNPool over the input")
        if stage is None:
            scheduled = Graph(dict(graph.values), list(graph.nodes), graph.input, graph.output,
                              {**graph.meta, "schedule": {"kind": "rnnpool"}})
            return scheduled
    if stage is None or patch is None:
        raise KilomlError(f"the {schedule} schedule needs the number of tiled nodes and a "
                          "patch size")
    tiled = make_tiled(graph, stage, tuple(patch))
    tiled.meta["schedule"]["kind"] = schedule
    return tiled


def schedule_figures(graph: Graph) -> dict:
    """The planner's statement for a scheduled graph: arena bytes (peak RAM without the
    caller's input, the logits and the stack), MACs (recomputation included) and the bytes of
    stored constants."""
    return {"schedule": graph.meta.get("schedule", {"kind": "layers"}),
            "arena_bytes": plan_arena(graph).peak, "macs": graph.macs(),
            "weight_flash_bytes": graph.flash_bytes()}
