"""The ``tiled`` node: the first stages of an image graph run patch by patch (MCUNetV2's
patch-based inference), writing the stage's output map one tile at a time.

The stage is a chain of windowed image nodes (``conv2d``, ``depthwise_conv2d``,
``pointwise_conv2d``, ``avgpool2d``, ``maxpool2d``, ``rnnpool``) from the graph's int16 input
``[C, H, W]`` (or, for a later stage, from an int8/int16 map an earlier node wrote whole) to
the stage output ``[C_out, OH, OW]``. The output map is
cut into tiles of ``patch = [ph, pw]`` output pixels (the last row and column of tiles may be
smaller). For each tile, walking the chain backwards, every node computes exactly the rows and
columns its successor reads: output rows ``[a, b)`` of a node with kernel ``k``, stride ``s``
and padding ``p`` read input rows ``[max(0, a·s - p), min(H, (b-1)·s - p + k))``; what falls
outside the map is that tile's zero padding (at most the node's own, so the kernels' padding
limits hold). Neighbouring tiles overlap by the receptive field: those inputs are recomputed,
and :meth:`TiledOp.macs` counts them.

Per tile: the input window is copied from the caller's buffer into the patch area
(``kl_tile_read_s16``/``_s8``), every node runs on its tile-sized maps with its tile's geometry (its
own params struct; weights shared), and the last map is copied into the stage output
(``kl_tile_write_s8``/``_s16``). Each output integer comes from the same window with the same
weights as layer by layer, so the integers are equal. RAM: the stage output map (an arena
value) plus one buffer ``patch`` holding the largest tile's working set, itself planned by
:func:`kiloml.ir.plan.plan_blocks` over the tile-sized maps.
"""

import copy
import re
from dataclasses import dataclass

import numpy as np

from kiloml.errors import KilomlError
from kiloml.ir.graph import Graph
from kiloml.ir.plan import ArenaPlan, Block, arena_blocks, plan_blocks
from kiloml.ops import get_op
from kiloml.ops.base import (
    DTYPE_BYTES,
    Buffer,
    EmitContext,
    Emitted,
    Node,
    Op,
    Value,
    register,
)

#: Ops a tiled stage may hold.
WINDOW_OPS = ("conv2d", "depthwise_conv2d", "pointwise_conv2d", "avgpool2d", "maxpool2d",
              "rnnpool")
#: Nodes and residual crops of one stage at most (``KL_TILE_MAX_NODES`` in ``kl_tile.h``).
MAX_STAGE_NODES = 16
#: The input-window copy of a stage by the dtype of the map it reads.
READERS = {"int8": "kl_tile_read_s8", "int16": "kl_tile_read_s16"}
#: Arena members by element type (as codegen's).
ARENA_MEMBERS = {"int8": "s8", "int16": "s16", "int32": "s32"}


def window(node: Node) -> tuple[list[int], list[int], list[int]]:
    """``(kernel [KH, KW], stride [s_h, s_w], padding [top, bottom, left, right])`` of a
    windowed image node, or a one-line error saying the patch schedule does not apply."""
    if node.op not in WINDOW_OPS:
        raise KilomlError(f"the patch schedule does not apply to node {node.name} ({node.op}): a "
                          f"tiled stage holds only {', '.join(WINDOW_OPS)}")
    if node.op == "pointwise_conv2d":
        return [1, 1], [1, 1], [0, 0, 0, 0]
    if node.op == "rnnpool":
        if node.attrs.get("flat"):
            raise KilomlError(f"the patch schedule does not apply to node {node.name}: a "
                              "single-patch RNNPool has no spatial output to tile")
        return (list(node.attrs["patch"]), list(node.attrs["stride"]),
                list(node.attrs.get("padding", [0, 0, 0, 0])))
    a = node.attrs
    return list(a["kernel"]), list(a["stride"]), list(a["padding"])


def input_span(start: int, stop: int, kernel: int, stride: int, pad: int, size: int
               ) -> tuple[int, int, int, int]:
    """``(lo, hi, pad_lo, pad_hi)``: input rows ``[lo, hi)`` that output rows
    ``[start, stop)`` read from a map of ``size`` rows, and the zero rows before and after."""
    first, end = start * stride - pad, (stop - 1) * stride - pad + kernel
    lo, hi = max(0, first), min(size, end)
    return lo, hi, lo - first, end - hi


@dataclass
class TileStep:
    """One node's work for one tile: its input rows/columns ``[r0, r1) × [c0, c1)`` of the
    full input map, its output region, and its tile padding ``[top, bottom, left, right]``."""

    rows: tuple[int, int]
    cols: tuple[int, int]
    out_rows: tuple[int, int]
    out_cols: tuple[int, int]
    padding: list[int]


def tile_steps(nodes: list[Node], values: dict[str, Value], out_rows: tuple[int, int],
               out_cols: tuple[int, int]) -> list[TileStep]:
    """Per node of the chain (in order), what it computes for the stage output region
    ``out_rows × out_cols``."""
    steps = []
    for node in reversed(nodes):
        kernel, stride, pads = window(node)
        _, height, width = values[node.inputs[0]].shape
        r0, r1, pt, pb = input_span(*out_rows, kernel[0], stride[0], pads[0], height)
        c0, c1, pl, pr = input_span(*out_cols, kernel[1], stride[1], pads[2], width)
        steps.append(TileStep((r0, r1), (c0, c1), out_rows, out_cols, [pt, pb, pl, pr]))
        out_rows, out_cols = (r0, r1), (c0, c1)
    return steps[::-1]


def tile_ranges(size: int, patch: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of each tile of ``patch`` pixels over ``size`` (the last may be
    smaller)."""
    return [(start, min(size, start + patch)) for start in range(0, size, patch)]


def crop_name(node: Node) -> str:
    """The value holding the crop of ``node``'s residual map to its tile."""
    return f"{node.inputs[1]}__crop_{node.name}"


def _tile_node(node: Node, step: TileStep) -> Node:
    """``node`` with its tile's padding (the integer tensors shared, not copied); a residual
    is read from its crop."""
    attrs = dict(node.attrs)
    if "padding" in attrs:
        attrs["padding"] = list(step.padding)
    inputs = [node.inputs[0], crop_name(node)] if len(node.inputs) > 1 else list(node.inputs)
    return Node(node.name, node.op, inputs, list(node.outputs), attrs, {}, node.path,
                node.q, node.consts)


@dataclass
class Crop:
    """A residual's tile cut to the tile of the node adding it: ``[channels, rows, cols]`` of
    the residual's ``[channels, in_rows, in_cols]`` tile from ``(row0, col0)``."""

    channels: int
    in_rows: int
    in_cols: int
    row0: int
    col0: int
    rows: int
    cols: int


def crops(nodes: list[Node], steps: list[TileStep]) -> dict[str, Crop]:
    """Per node adding a residual (by name), the crop of the residual's tile it reads."""
    produced = {node.outputs[0]: step for node, step in zip(nodes, steps, strict=True)}
    out = {}
    for node, step in zip(nodes, steps, strict=True):
        if len(node.inputs) < 2:
            continue
        source = produced[node.inputs[1]]
        (r0, r1), (c0, c1) = source.out_rows, source.out_cols
        (a, b), (c, d) = step.out_rows, step.out_cols
        if not (r0 <= a and b <= r1 and c0 <= c and d <= c1):
            raise KilomlError(f"the patch schedule does not apply to node {node.name}: its "
                              "residual's tile does not cover its output tile")
        out[node.name] = Crop(int(node.q["weight"].values.shape[0]), r1 - r0, c1 - c0,
                              a - r0, c - c0, b - a, d - c)
    return out


def _tile_values(nodes: list[Node], values: dict[str, Value], steps: list[TileStep]
                 ) -> dict[str, Value]:
    """Tile-sized copies of the chain's values and residual crops (all in the patch
    area)."""
    out = {}
    for node, step in zip(nodes, steps, strict=True):
        for name, (rows, cols) in ((node.inputs[0], (step.rows, step.cols)),
                                   (node.outputs[0], (step.out_rows, step.out_cols))):
            full = values[name]
            out[name] = Value(name, (full.shape[0], rows[1] - rows[0], cols[1] - cols[0]),
                              full.dtype, full.frac_bits, "arena")
    for name, crop in crops(nodes, steps).items():
        node = next(n for n in nodes if n.name == name)
        full = values[node.inputs[1]]
        out[crop_name(node)] = Value(crop_name(node), (crop.channels, crop.rows, crop.cols),
                                     full.dtype, full.frac_bits, "arena")
    return out


def stage_of(node: Node) -> tuple[list[Node], dict[str, Value]]:
    """The chain's nodes and full-size values a ``tiled`` node holds."""
    return node.attrs["nodes"], node.attrs["values"]


def tiles(node: Node) -> list[list[TileStep]]:
    """Every tile's steps, row-major over the stage output map."""
    nodes, values = stage_of(node)
    _, out_h, out_w = values[nodes[-1].outputs[0]].shape
    ph, pw = node.attrs["patch"]
    return [tile_steps(nodes, values, rows, cols)
            for rows in tile_ranges(out_h, ph) for cols in tile_ranges(out_w, pw)]


def patch_plan(node: Node) -> tuple[Graph, ArenaPlan]:
    """The patch area: a graph of the chain over the envelope of all tiles (every value at its
    largest tile size) and its plan (the copied input window counted from the first node)."""
    nodes, values = stage_of(node)
    envelope: dict[str, Value] = {}
    for steps in tiles(node):
        for name, value in _tile_values(nodes, values, steps).items():
            old = envelope.get(name)
            shape = value.shape if old is None else tuple(map(max, old.shape, value.shape))
            envelope[name] = Value(name, shape, value.dtype, value.frac_bits, "arena")
    first = nodes[0].inputs[0]
    cropped = {crop_name(n): i for i, n in enumerate(nodes) if len(n.inputs) > 1}
    for name in (first, *cropped):
        envelope[name].storage = "input"
    graph = Graph(values=envelope, nodes=list(nodes), input=first)
    blocks = arena_blocks(graph) + [
        Block(name, "", envelope[name].nbytes, DTYPE_BYTES[envelope[name].dtype], i, i)
        for name, i in [(first, 0), *cropped.items()]]
    for name in (first, *cropped):
        envelope[name].storage = "arena"
    return graph, plan_blocks(blocks)


def make_tiled(graph: Graph, count: int, patch: tuple[int, int], name: str = "tiled",
               first: int = 0) -> Graph:
    """A copy of the quantized ``graph`` whose nodes ``first .. first + count - 1`` run as one
    ``tiled`` node with tiles of ``patch`` output pixels; one-line errors when the schedule does
    not apply. The chain reads the graph's int16 input (``first`` 0) or an int8/int16 map an
    earlier node wrote (a later stage: that map stays whole, the stage's maps are tiled)."""
    if not 0 <= first < len(graph.nodes) or not 1 <= count <= len(graph.nodes) - first:
        raise KilomlError(f"a tiled stage holds 1 to {len(graph.nodes) - first} nodes of the "
                          f"graph from node {first}, got {count}")
    nodes = graph.nodes[first:first + count]
    slots = count + sum(len(n.inputs) > 1 for n in nodes)
    if slots > MAX_STAGE_NODES:
        raise KilomlError(f"a tiled stage holds at most {MAX_STAGE_NODES} nodes and residual "
                          f"crops, got {slots}")
    source = previous = nodes[0].inputs[0]
    produced: list[str] = []
    for node in nodes:
        window(node)
        if len(node.inputs) > 1 and node.inputs[1] not in produced:
            raise KilomlError(f"the patch schedule does not apply to node {node.name}: the "
                              f"residual {node.inputs[1]} it adds is not computed inside the "
                              "stage")
        produced.append(node.outputs[0])
        if node.inputs[0] != previous:
            raise KilomlError(f"the patch schedule does not apply to node {node.name}: a tiled "
                              f"stage is a chain from one map, and it reads {node.inputs[0]}, "
                              f"not {previous}")
        previous = node.outputs[0]
    if first == 0 and graph.values[source].dtype != "int16":
        raise KilomlError("the patch schedule needs the graph's int16 input map")
    if graph.values[source].dtype not in READERS:
        raise KilomlError(f"the patch schedule reads int8 or int16 maps, and {source} is "
                          f"{graph.values[source].dtype}")
    inner = {n: graph.values[n] for node in nodes for n in (*node.inputs, node.outputs[0])}
    later = [n for node in graph.nodes[first + count:] for n in node.inputs]
    stray = [n for n in inner if n not in (source, previous) and n in later]
    if stray:
        raise KilomlError(f"the patch schedule does not apply: {stray[0]} inside the tiled "
                          "stage is read after it")
    out = graph.values[previous]
    if len(out.shape) != 3:
        raise KilomlError(f"the patch schedule needs a [C, H, W] stage output, got "
                          f"{list(out.shape)}")
    _, out_h, out_w = out.shape
    ph, pw = patch
    if not (1 <= ph <= out_h and 1 <= pw <= out_w):
        raise KilomlError(f"patch {ph}x{pw} does not fit the stage's {out_h}x{out_w} output "
                          f"map; each side must be 1 to the map's")
    if name in {n.name for n in graph.nodes}:
        raise KilomlError(f"the graph already has a node named {name}")
    tiled = copy.deepcopy(graph)
    stage = [copy.deepcopy(node) for node in nodes]
    values = {n: copy.deepcopy(v) for n, v in inner.items()}
    for n in inner:
        if n not in (source, previous):
            del tiled.values[n]
    tiled.nodes = [*tiled.nodes[:first],
                   Node(name, "tiled", [source], [previous],
                        {"patch": [ph, pw], "nodes": stage, "values": values}, {},
                        "tiled stage"), *tiled.nodes[first + count:]]
    tiled.meta["schedule"] = {"kind": "patches", "nodes": count, "patch": [ph, pw]}
    return tiled


def _params_block(text: str, symbol: str) -> str:
    """The ``static const <type> <symbol> ... = {...};`` definition in ``text``."""
    match = re.search(rf"static const \w+ {re.escape(symbol)}( KL_CONST)? = \{{\n.*?\n\}};\n",
                      text, re.DOTALL)
    if match is None:
        raise ValueError(f"no params struct {symbol} in the emitted code")
    return match.group()


def _offset(pointer: str, dtype: str) -> int:
    """Byte offset of an arena pointer expression ``scratch->sNN + k``."""
    return int(pointer.rsplit("+", 1)[1]) * DTYPE_BYTES[dtype]


@register
class TiledOp(Op):
    """``attrs``: ``patch [ph, pw]`` (output pixels per tile), ``nodes`` (the chain, quantized)
    and ``values`` (its full-size values); built by :func:`make_tiled`."""

    name = "tiled"
    c_files = ("kl_tile.h", "kl_tile.c")

    def infer(self, node, inputs):
        nodes, values = stage_of(node)
        return [copy.deepcopy(values[nodes[-1].outputs[0]])]

    def float_forward(self, node, inputs, record):
        raise KilomlError("a tiled stage is a schedule of the quantized graph; calibrate and "
                          "quantize the layer-by-layer graph")

    def quantize(self, node, inputs, outputs, ranges, bits):
        self.float_forward(node, inputs, None)

    def simulate(self, node, inputs, in_values, out_values):
        nodes, values = stage_of(node)
        x = np.asarray(inputs[0], dtype=np.int64)
        out = np.zeros((len(x), *out_values[0].shape), dtype=np.int64)
        for steps in tiles(node):
            shapes = _tile_values(nodes, values, steps)
            first = steps[0]
            current = {nodes[0].inputs[0]: x[:, :, slice(*first.rows), slice(*first.cols)]}
            cuts = crops(nodes, steps)
            for inner, step in zip(nodes, steps, strict=True):
                tile = _tile_node(inner, step)
                if inner.name in cuts:
                    cut = cuts[inner.name]
                    current[tile.inputs[1]] = current[inner.inputs[1]][
                        :, :, cut.row0:cut.row0 + cut.rows, cut.col0:cut.col0 + cut.cols]
                (current[inner.outputs[0]],) = get_op(inner.op).simulate(
                    tile, [current[n] for n in tile.inputs], [shapes[n] for n in tile.inputs],
                    [shapes[inner.outputs[0]]])
            last = steps[-1]
            out[:, :, slice(*last.out_rows), slice(*last.out_cols)] = current[nodes[-1].outputs[0]]
        return [out]

    def buffers(self, node, inputs, outputs):
        return [Buffer("patch", "int32", patch_plan(node)[1].peak // 4)]

    def storage(self, node):
        return {f"{inner.name}.{key}": entry for inner in stage_of(node)[0]
                for key, entry in get_op(inner.op).storage(inner).items()}

    def flash_bytes(self, node):
        return sum(get_op(inner.op).flash_bytes(inner) for inner in stage_of(node)[0])

    def macs(self, node, inputs, outputs):
        """Every tile's MACs: the overlapping windows are counted once per tile."""
        nodes, values = stage_of(node)
        total = 0
        for steps in tiles(node):
            shapes = _tile_values(nodes, values, steps)
            total += sum(get_op(inner.op).macs(_tile_node(inner, step),
                                               [shapes[inner.inputs[0]]],
                                               [shapes[inner.outputs[0]]])
                         for inner, step in zip(nodes, steps, strict=True))
        return total

    def layer_macs(self, node) -> int:
        """The chain's MACs layer by layer (no recomputation)."""
        nodes, values = stage_of(node)
        return sum(get_op(n.op).macs(n, [values[n.inputs[0]]], [values[n.outputs[0]]])
                   for n in nodes)

    def emit(self, node, inputs, outputs, c: EmitContext) -> Emitted:
        nodes, values = stage_of(node)
        envelope, plan = patch_plan(node)
        base = _offset(c.buffer("patch"), "int32")

        def pointer(name: str) -> str:
            value = envelope.values[name]
            offset = base + plan.value_offset(name)
            return f"scratch->{ARENA_MEMBERS[value.dtype]} + {offset // DTYPE_BYTES[value.dtype]}"

        def inner_buffer(inner: Node, name: str, dtype: str) -> str:
            offset = base + plan.buffer_offset(inner.name, name)
            return f"scratch->{ARENA_MEMBERS[dtype]} + {offset // DTYPE_BYTES[dtype]}"

        all_tiles = tiles(node)
        definitions, calls = [], []
        table, crop_table = [[] for _ in all_tiles], [[] for _ in all_tiles]
        for index, inner in enumerate(nodes):
            op = get_op(inner.op)
            geometries: dict[str, int] = {}
            call = ""
            for t, steps in enumerate(all_tiles):
                step = steps[index]
                shapes = _tile_values(nodes, values, steps)
                tile = _tile_node(inner, step)
                tile_in = [shapes[n] for n in tile.inputs]
                tile_out = [shapes[inner.outputs[0]]]
                key = repr((tile.attrs.get("padding"), tile_in[0].shape))
                if key not in geometries:
                    gid = geometries[key] = len(geometries)
                    dtypes = {b.name: b.dtype for b in op.buffers(tile, tile_in, tile_out)}
                    context = EmitContext(
                        tile, symbol=lambda s, n=inner, g=gid: (
                            f"kiloml_{n.name}_g{g}_params" if s == "params"
                            else f"kiloml_{n.name}_{s}"),
                        pointer=pointer,
                        buffer=lambda b, n=inner, d=dtypes: inner_buffer(n, b, d[b]))
                    emitted = op.emit(tile, tile_in, tile_out, context)
                    symbol = f"kiloml_{inner.name}_g{gid}_params"
                    definitions.append(emitted.definitions if gid == 0
                                       else _params_block(emitted.definitions, symbol))
                    if gid == 0:
                        call = emitted.call.replace(f"&{symbol}", f"tile->params[{index}]")
                        definitions[-1] = (f"/* {inner.name}: {inner.op} in the tiled stage "
                                           f"*/\n{definitions[-1]}")
                table[t].append(f"&kiloml_{inner.name}_g{geometries[key]}_params")
            if len(inner.inputs) > 1:
                slot = len(nodes) + sum(len(n.inputs) > 1 for n in nodes[:index])
                kinds: dict[str, int] = {}
                for t, steps in enumerate(all_tiles):
                    cut = crops(nodes, steps)[inner.name]
                    key = repr(cut)
                    if key not in kinds:
                        kinds[key] = len(kinds)
                        fields = ", ".join(f".{k} = {v}" for k, v in vars(cut).items())
                        definitions.append(f"static const kl_tile_crop_t kiloml_{inner.name}_"
                                           f"crop_g{kinds[key]} = {{{fields}}};\n")
                    crop_table[t].append(f"&kiloml_{inner.name}_crop_g{kinds[key]}")
                calls.append(f"        kl_tile_crop_s8(tile->params[{slot}], "
                             f"{pointer(inner.inputs[1])}, {pointer(crop_name(inner))});\n")
            calls.append("".join(f"    {line}" for line in call.splitlines(True)))
        rows = []
        merged = [a + b for a, b in zip(table, crop_table, strict=True)]
        for steps, params in zip(all_tiles, merged, strict=True):
            first, last = steps[0], steps[-1]
            rows.append(f"    {{{first.rows[0]}, {first.rows[1] - first.rows[0]}, "
                        f"{first.cols[0]}, {first.cols[1] - first.cols[0]}, "
                        f"{last.out_rows[0]}, {last.out_rows[1] - last.out_rows[0]}, "
                        f"{last.out_cols[0]}, {last.out_cols[1] - last.out_cols[0]}, "
                        f"{{{', '.join(params)}}}}}")
        tiles_symbol = c.symbol("tiles")
        definitions.append(f"static const kl_tile_t {tiles_symbol}[{len(rows)}] = {{\n"
                           + ",\n".join(rows) + "\n};\n")
        x, y = inputs[0], outputs[0]
        first_in, last_out = nodes[0].inputs[0], nodes[-1].outputs[0]
        writer = {"int8": "kl_tile_write_s8", "int16": "kl_tile_write_s16"}[y.dtype]
        body = (f"    for (int t = 0; t < {len(rows)}; t++) {{\n"
                f"        const kl_tile_t *tile = &{tiles_symbol}[t];\n"
                f"        {READERS[x.dtype]}({c.pointer(node.inputs[0])}, {x.shape[0]}, "
                f"{x.shape[1]}, {x.shape[2]}, tile, {pointer(first_in)});\n"
                + "".join(calls)
                + f"        {writer}({pointer(last_out)}, {y.shape[0]}, {y.shape[1]}, "
                f"{y.shape[2]}, tile, {c.pointer(node.outputs[0])});\n    }}\n")
        return Emitted("\n".join(definitions), body)
