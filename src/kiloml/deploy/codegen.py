"""C source generation for a quantized graph: ``model.h``, ``model.c``, ``kl_model_config.h``
and ``test_vectors.h``.

``model.c`` holds every node's constants (weights as ``const`` arrays and one params struct
per node) and ``kiloml_predict``: the nodes' kernel calls in execution order, each reading and
writing the caller's input and output buffers or the arena at the offsets
:func:`kiloml.ir.plan.plan_arena` chose. The kernels are the library's C files
(``deploy/c/kl_*.c``, ``deploy/c/ops/kl_*.c``); only those the graph's ops name are exported.
``kl_model_config.h`` sets the library's compile-time switches: the optional parts of a kernel
that the graph's nodes use (:meth:`kiloml.ops.base.Op.c_switches`), which the library files
compile only when their switch is 1.
Templates in ``deploy/c/templates`` get their ``@NAME@`` placeholders filled in here.
"""

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from kiloml.deploy import early_exit
from kiloml.deploy.stream import is_streamable, state_bytes, stream_code
from kiloml.ir.graph import Graph
from kiloml.ir.plan import ArenaPlan, plan_arena
from kiloml.ops import get_op
from kiloml.ops.base import C_TYPES, DTYPE_BYTES, EmitContext

#: Library files every export needs.
COMMON_FILES = ("kl_fixed.h", "kl_flash.h", "kl_constants.h")
#: The generated header of the library's switches, written beside ``model.h``.
MODEL_CONFIG_FILE = "kl_model_config.h"
#: Its switches (placeholders of ``templates/kl_model_config.h.in``).
SWITCHES = ("USES_QUANT_GATE",)
#: Arena members by element type (``kiloml_scratch_t`` is a union of typed arrays).
ARENA_MEMBERS = {"int8": "s8", "int16": "s16", "int32": "s32"}


def library_dir() -> Path:
    """The directory holding kiloml's C sources (``kl_*.c/h``, ``ops/``, templates, targets)."""
    return Path(str(resources.files("kiloml.deploy") / "c"))


def library_file(name: str) -> Path:
    """A C file of the library: the shared primitives, or an op kernel in ``ops/``."""
    for folder in (library_dir(), library_dir() / "ops"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(name)


def fill_template(name: str, values: dict[str, object], folder: str = "templates") -> str:
    """The template ``deploy/c/<folder>/<name>`` with every ``@KEY@`` replaced."""
    text = (library_dir() / folder / name).read_text()
    for key, value in values.items():
        text = text.replace(f"@{key}@", str(value))
    leftover = re.search(r"@[A-Z_]+@", text)
    if leftover:
        raise ValueError(f"template {name}: unfilled placeholder {leftover.group()}")
    return text


def library_files(graph: Graph) -> list[str]:
    """The C files (headers and sources) the graph's kernels need, without duplicates."""
    files = list(COMMON_FILES)
    for op in graph.ops():
        files += [f for f in get_op(op).c_files if f not in files]
    return files


def model_config(graph: Graph) -> str:
    """``kl_model_config.h``: each of :data:`SWITCHES` 1 when a node of the graph (or of a
    ``tiled`` node's stage) uses that part of the library, else 0."""
    used: set[str] = set()
    for node in graph.nodes:
        for inner in (node, *node.attrs.get("nodes", ())):
            used |= get_op(inner.op).c_switches(inner)
    unknown = used - set(SWITCHES)
    if unknown:
        raise ValueError(f"unknown C switches {sorted(unknown)}")
    return fill_template(f"{MODEL_CONFIG_FILE}.in", {k: int(k in used) for k in SWITCHES})


def c_sources(files: list[str]) -> list[str]:
    """The ``.c`` files among ``files`` (what a build compiles besides ``model.c``)."""
    return [f for f in files if f.endswith(".c")]


@dataclass
class GeneratedModel:
    """``model.h``/``model.c``/``kl_model_config.h`` text, the library files they need and
    what they store."""

    header: str
    source: str
    config: str
    files: list[str]
    plan: ArenaPlan
    weight_flash_bytes: int
    macs: int
    storage: dict[str, dict]
    stack_bytes: int | None
    ram_bytes: int
    #: Bytes of ``kiloml_stream_t`` (ShaRNN and EMI-FastGRNN exports; ``None`` for others).
    stream_state_bytes: int | None = None

    @property
    def scratch_bytes(self) -> int:
        return self.plan.peak


def _pointer(graph: Graph, plan: ArenaPlan, name: str) -> str:
    value = graph.values[name]
    if value.storage == "input":
        return "x"
    if value.storage == "output":
        return "y"
    if value.storage == "return":
        return "result"
    offset = plan.value_offset(name)
    return f"scratch->{ARENA_MEMBERS[value.dtype]} + {offset // DTYPE_BYTES[value.dtype]}"


def _buffer(plan: ArenaPlan, node: str, name: str, dtype: str) -> str:
    offset = plan.buffer_offset(node, name)
    return f"scratch->{ARENA_MEMBERS[dtype]} + {offset // DTYPE_BYTES[dtype]}"


def ram_lines(scratch: int, outputs: int, stack: int | None) -> str:
    """``model.h``'s statement of the RAM one inference needs: arena, outputs and, when it was
    measured at export, the stack on Cortex-M4."""
    if stack is None:
        return ("/* RAM of one inference without the stack (not measured at export: no\n"
                " * arm-none-eabi-gcc): the arena and the logits. */\n"
                f"#define KILOML_RAM_BYTES {scratch + outputs}")
    return ("/* Deepest stack of one kiloml_predict call on Cortex-M4 (arm-none-eabi-gcc -O2,\n"
            " * from its call graph), and all the RAM one inference needs: the arena, the\n"
            " * logits and that stack. */\n"
            f"#define KILOML_STACK_BYTES {stack}\n"
            f"#define KILOML_RAM_BYTES {scratch + outputs + stack}")


def schedule_text(schedule: dict) -> str:
    """The tiled stages of a schedule in words (empty for none)."""
    stages = schedule.get("stages")
    if stages is None and "patch" in schedule:
        stages = [{"first": 0, "nodes": schedule["nodes"], "patch": schedule["patch"]}]
    return "".join(f", nodes {s['first']}-{s['first'] + s['nodes'] - 1} on {s['patch'][0]}x"
                   f"{s['patch'][1]}-pixel tiles" for s in stages or [])


def image_lines(graph: Graph, arena: int) -> str:
    """``model.h``'s statement for an image family's graph (empty for others): the input's
    layout and offset, the schedule and its planned peak RAM (the arena), and the other
    schedules' planned peaks (``graph.meta["schedules_planned"]``, set by the export)."""
    if not graph.meta.get("image_rows"):
        return ""
    channels, height, width = graph.values[graph.input].shape
    offset = ", ".join(f"{v:.6g}" for v in graph.meta.get("input_offset", [0.0] * channels))
    kind = graph.meta.get("schedule", {}).get("kind", "layers")
    others = "; ".join(f"{k} {v:,} B" for k, v in graph.meta.get("schedules_planned", {}).items()
                       if k != kind)
    return (f"/* Image input: x[KILOML_IMAGE_CHANNELS][KILOML_IMAGE_HEIGHT][KILOML_IMAGE_WIDTH]"
            f"\n * (channel-major) = clamp(round((pixel - mean[c]) * 2^KILOML_INPUT_FRAC_BITS),"
            f"\n * -32768, 32767) with the per-channel means {{{offset}}} (the pixels as the"
            f"\n * model was trained on them); 1/std is folded into the first convolution."
            f"\n * Schedule {kind}: planned peak RAM (the arena) {arena:,} B"
            + (f"; other schedules of this model: {others}" if others else "")
            + ". */\n"
            f"#define KILOML_IMAGE_CHANNELS {channels}\n#define KILOML_IMAGE_HEIGHT {height}\n"
            f"#define KILOML_IMAGE_WIDTH {width}\n#define KILOML_SCHEDULE \"{kind}\"\n"
            f"#define KILOML_PLANNED_PEAK_BYTES {arena}\n")


def generate_model(graph: Graph, description: str, stack_bytes: int | None = None
                   ) -> GeneratedModel:
    """``model.h`` and ``model.c`` for the quantized ``graph``; ``stack_bytes`` is the stack of
    ``kiloml_predict`` on Cortex-M4 when it has been measured (see
    :func:`kiloml.deploy.export.cortex_m4_stack`)."""
    plan = plan_arena(graph)
    definitions, calls = [], []
    for node in graph.nodes:
        op = get_op(node.op)
        inputs, outputs = graph.node_values(node)
        dtypes = {b.name: b.dtype for b in op.buffers(node, inputs, outputs)}
        context = EmitContext(
            node, symbol=lambda suffix, node=node: f"kiloml_{node.name}_{suffix}",
            pointer=lambda name: _pointer(graph, plan, name),
            buffer=lambda name, node=node, dtypes=dtypes: _buffer(plan, node.name, name,
                                                                  dtypes[name]))
        emitted = op.emit(node, inputs, outputs, context)
        where = f", module {node.path}" if node.path else ""
        definitions.append(f"/* {node.name}: {node.op}{where} */\n{emitted.definitions}")
        calls.append(emitted.call)
    files = library_files(graph)
    x, y = graph.values[graph.input], graph.values[graph.output]
    steps, features = (x.shape if len(x.shape) == 2 else (1, x.count))
    flash = graph.flash_bytes()
    macs = graph.macs()
    stream_h = stream_c = ""
    stream_bytes = None
    streaming = (stream_code, state_bytes) if is_streamable(graph) else (
        (early_exit.stream_code, early_exit.state_bytes)
        if early_exit.has_early_exit(graph) else None)
    if streaming:
        code, size = streaming
        stream_h, stream_c = code(
            graph, plan.peak, calls, lambda name: _pointer(graph, plan, name),
            lambda node, name: _buffer(plan, node.name, name, {
                b.name: b.dtype for b in get_op(node.op).buffers(
                    node, *graph.node_values(node))}[name]))
        stream_bytes = size(graph, plan.peak)
    schedule = graph.meta.get("schedule")
    if schedule and schedule.get("kind") != "layers":
        description += f" (schedule: {schedule['kind']}{schedule_text(schedule)})"
    header = fill_template("model.h.in", {
        "DESCRIPTION": description, "KIND": graph.meta.get("kind", "graph"),
        "INPUT_SIZE": features, "STEPS": steps,
        "FRAME_STACK": graph.meta.get("frame_stack", 1), "NUM_CLASSES": y.count,
        "INPUT_COUNT": x.count, "OUTPUT_COUNT": y.count,
        "INPUT_TYPE": C_TYPES[x.dtype], "OUTPUT_TYPE": C_TYPES[y.dtype],
        "WEIGHT_BITS": graph.meta.get("bits", 16), "INPUT_FRAC_BITS": x.frac_bits,
        "OUTPUT_FRAC_BITS": y.frac_bits, "WEIGHT_FLASH_BYTES": flash,
        "SCRATCH_BYTES": plan.peak, "MACS": macs,
        "RAM": ram_lines(plan.peak, y.nbytes, stack_bytes),
        "IMAGE": image_lines(graph, plan.peak),
        "ARENA_MEMBERS": "\n".join(
            f"    {C_TYPES[dtype]} {member}[{plan.peak // DTYPE_BYTES[dtype]}];"
            for dtype, member in ARENA_MEMBERS.items()),
        "STREAM": stream_h})
    includes = "\n".join(f'#include "{f}"' for f in files
                         if f.endswith(".h") and f not in COMMON_FILES)
    returns = graph.return_value is not None
    body = "".join(calls)
    if "scratch->" not in body:
        body = "    (void)scratch;\n" + body
    source = fill_template("model.c.in", {
        "INCLUDES": includes, "DEFINITIONS": "\n".join(definitions),
        "INPUT_TYPE": C_TYPES[x.dtype], "OUTPUT_TYPE": C_TYPES[y.dtype],
        "RESULT": "    int result;\n" if returns else "",
        "CALLS": body, "RETURN": "result" if returns else "0",
        "STREAM": stream_c})
    return GeneratedModel(header, source, model_config(graph), files, plan, flash, macs,
                          graph.storage(), stack_bytes, plan.peak + y.nbytes + (stack_bytes or 0),
                          stream_bytes)


def c_rows(values: np.ndarray) -> str:
    """Brace-enclosed initializer rows, one per leading index of ``values``."""
    return ",\n".join("    {" + ", ".join(str(int(v)) for v in row.reshape(-1)) + "}"
                      for row in values)


def generate_test_vectors(graph: Graph, inputs: np.ndarray, labels: np.ndarray,
                          outputs: np.ndarray) -> str:
    """``test_vectors.h``: integer inputs ``[n, ...]``, labels ``[n]`` and the simulator's
    outputs ``[n, C]`` for the example program."""
    x, y = graph.values[graph.input], graph.values[graph.output]
    return fill_template("test_vectors.h.in", {
        "INPUT_FRAC_BITS": x.frac_bits, "COUNT": inputs.shape[0],
        "INPUT_TYPE": C_TYPES[x.dtype], "OUTPUT_TYPE": C_TYPES[y.dtype],
        "INPUTS": c_rows(inputs.reshape(len(inputs), -1)),
        "OUTPUTS": c_rows(outputs.reshape(len(outputs), -1)),
        "LABELS": "    " + ", ".join(str(int(v)) for v in labels)})
