"""The streaming C API of a ShaRNN export: ``kiloml_stream_init`` and ``kiloml_stream_push``,
generated into ``model.h``/``model.c`` next to ``kiloml_predict`` (the C form of
:class:`kiloml.ir.stream.ShaRNNStream`).

``kiloml_stream_t`` holds the frames of the brick being read (``int16 [k F]``), a ring of the
last ``n = T/k`` brick summaries (the lower node's output rows, ``[n H]``), three counters and
the arena. A push copies one frame in; the ``k``-th frame of a brick runs the lower node's
inner kernel once on those ``k`` frames into the ring's next slot; once ``n`` bricks have been
read, every new brick copies the ring, oldest brick first, to the lower node's place in the
arena and runs the rest of the graph's calls as ``kiloml_predict`` does (upper node, head,
arg-max). The ring's size is fixed at export (``KILOML_STREAM_STATE_BYTES``).
"""

from kiloml.ir.graph import Graph
from kiloml.ops import get_op
from kiloml.ops.base import C_TYPES, DTYPE_BYTES, EmitContext


def is_streamable(graph: Graph) -> bool:
    """Whether ``graph`` is a ShaRNN graph (its first node runs a recurrent op over bricks)."""
    return bool(graph.nodes) and graph.nodes[0].op.startswith("bricks_")


def stream_sizes(graph: Graph) -> dict[str, int]:
    """``brick`` (k), ``bricks`` (n), ``features`` (F), ``hidden`` (H) of a ShaRNN graph."""
    node = graph.nodes[0]
    steps, features = graph.values[graph.input].shape
    bricks, hidden = graph.values[node.outputs[0]].shape
    return {"brick": node.attrs["brick"], "bricks": bricks, "features": features,
            "hidden": hidden}


def state_bytes(graph: Graph, scratch_bytes: int) -> int:
    """Bytes of ``kiloml_stream_t`` on a target that aligns ``int32_t`` to 4 bytes (arena,
    three counters, the frames of one brick and the ring, padded to 4)."""
    s = stream_sizes(graph)
    x, ring = graph.values[graph.input], graph.values[graph.nodes[0].outputs[0]]
    total = (scratch_bytes + 3 * 4 + s["brick"] * s["features"] * DTYPE_BYTES[x.dtype]
             + s["bricks"] * s["hidden"] * DTYPE_BYTES[ring.dtype])
    return total + (-total % 4)


def stream_code(graph: Graph, scratch_bytes: int, calls: list[str], pointer, buffer
                ) -> tuple[str, str]:
    """``(model.h declarations, model.c functions)`` of the streaming API; ``calls`` are the
    C calls of ``kiloml_predict`` per node, ``pointer``/``buffer`` its value and buffer
    pointers (see :func:`kiloml.deploy.codegen.generate_model`)."""
    from kiloml.deploy.codegen import fill_template  # codegen imports this module

    s = stream_sizes(graph)
    node = graph.nodes[0]
    x, ring = graph.values[graph.input], graph.values[node.outputs[0]]
    inner = get_op(node.op)
    inputs, outputs = graph.node_values(node)
    brick_in, brick_out = inner._brick_values(node, inputs, outputs)
    own = {node.inputs[0]: "state->frames",
           node.outputs[0]: f"state->ring + state->head * {s['hidden']}"}
    context = EmitContext(node, symbol=lambda suffix: f"kiloml_{node.name}_{suffix}",
                          pointer=lambda name: own.get(name) or pointer(name),
                          buffer=lambda name: buffer(node, name))
    lower = inner._inner().emit(node, brick_in, brick_out, context).call
    returns = graph.return_value is not None
    header = fill_template("stream.h.in", {
        "BRICK": s["brick"], "BRICKS": s["bricks"], "HIDDEN": s["hidden"],
        "STATE_BYTES": state_bytes(graph, scratch_bytes),
        "INPUT_TYPE": C_TYPES[x.dtype], "RING_TYPE": C_TYPES[ring.dtype],
        "RING_FRAC_BITS": ring.frac_bits,
        "OUTPUT_TYPE": C_TYPES[graph.values[graph.output].dtype]})
    source = fill_template("stream.c.in", {
        "INPUT_TYPE": C_TYPES[x.dtype], "OUTPUT_TYPE": C_TYPES[graph.values[graph.output].dtype],
        "FEATURES": s["features"], "HIDDEN": s["hidden"], "WINDOW": pointer(node.outputs[0]),
        "LOWER_CALL": lower, "CALLS": "".join(calls[1:]),
        "RESULT": "    int result;\n" if returns else "",
        "RETURN": "result" if returns else "0"})
    return header, source
