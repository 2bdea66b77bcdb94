"""The streaming C API of an EMI-FastGRNN export with early exit: ``kiloml_stream_init`` and
``kiloml_stream_push``, generated into ``model.h``/``model.c`` next to ``kiloml_predict`` (the
C form of :class:`kiloml.ir.early_exit.EMIStream`).

``kiloml_stream_t`` holds a ring of the last ``W`` frames (``int16 [W F]``), a ring of the
last ``I`` instances' classes, five counters and the arena. Every ``s`` frames (once ``W``
are in) a push zeroes the recurrent node's state in the arena, prepares the fast update once
(``kl_fastgrnn_prepare``) and, oldest frame first, runs ``kl_fastgrnn_step_s16`` and the
head's call on one frame at a time, testing the logits after
each step against ``KILOML_STREAM_EXIT_MARGIN`` and stopping at the first step that passes;
then the window's class is the longest run over the ring of classes. The rings' sizes and the
margin are fixed at export (``KILOML_STREAM_STATE_BYTES``).
"""

from kiloml.ir.early_exit import early_exit_settings
from kiloml.ir.graph import Graph
from kiloml.ops import get_op
from kiloml.ops.base import C_TYPES, DTYPE_BYTES, EmitContext


def has_early_exit(graph: Graph) -> bool:
    """Whether ``graph`` is a whole EMI-FastGRNN graph (``meta["early_exit"]``; recurrent
    node, head, arg-max), not one node of it alone."""
    return ("early_exit" in graph.meta and len(graph.nodes) == 3
            and graph.nodes[0].op == "fastrnn")


def state_bytes(graph: Graph, scratch_bytes: int) -> int:
    """Bytes of ``kiloml_stream_t`` on a target that aligns ``int32_t`` to 4 bytes (arena,
    five counters, the last ``W`` frames and ``I`` int16 classes, padded to 4)."""
    s = early_exit_settings(graph)
    x = graph.values[graph.input]
    total = scratch_bytes + 5 * 4 + x.count * DTYPE_BYTES[x.dtype] + 2 * s["instances"]
    return total + (-total % 4)


def stream_code(graph: Graph, scratch_bytes: int, calls: list[str], pointer, buffer
                ) -> tuple[str, str]:
    """``(model.h declarations, model.c functions)``; ``calls`` are the C calls of
    ``kiloml_predict`` per node (recurrent node, head, arg-max), ``pointer``/``buffer`` its
    value and buffer pointers (see :func:`kiloml.deploy.codegen.generate_model`)."""
    from kiloml.deploy.codegen import fill_template  # codegen imports this module

    s = early_exit_settings(graph)
    node = graph.nodes[0]
    x, y = graph.values[graph.input], graph.values[graph.output]
    state = graph.values[node.outputs[0]]
    context = EmitContext(node, symbol=lambda suffix: f"kiloml_{node.name}_{suffix}",
                          pointer=pointer, buffer=lambda name: buffer(node, name))
    step = get_op(node.op).call(node, *graph.node_values(node), context,
                                "kl_fastgrnn_step_s16", "plan, x")
    header = fill_template("early_exit_stream.h.in", {
        "STRIDE": s["stride"], "INSTANCES": s["instances"], "NOISE": s["noise"],
        "MARGIN": s["margin"], "STATE_BYTES": state_bytes(graph, scratch_bytes),
        "INPUT_TYPE": C_TYPES[x.dtype], "OUTPUT_TYPE": C_TYPES[y.dtype]})
    source = fill_template("early_exit_stream.c.in", {
        "INPUT_TYPE": C_TYPES[x.dtype], "OUTPUT_TYPE": C_TYPES[y.dtype],
        "STATE_TYPE": C_TYPES[state.dtype], "STATE": pointer(node.outputs[0]),
        "FEATURES": x.shape[1], "HIDDEN": state.shape[0],
        "PARAMS": f"kiloml_{node.name}_params",
        "STEP_CALL": indent(step), "HEAD_CALL": indent(calls[1])})
    return header, source


def indent(code: str) -> str:
    """``code`` four more spaces in (a call inside the step loop)."""
    return "".join(f"    {line}" if line.strip() else line for line in code.splitlines(True))
