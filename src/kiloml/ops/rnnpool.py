"""RNNPool (Saha et al., NeurIPS 2020) over a feature map as one op: every patch pooled by two
FastGRNN cells, patch after patch, so the working memory is one patch's summaries.

Input ``x`` int16 or int8 ``[C, H, W]`` in Q(in), zero-padded by ``padding`` ``[top, bottom,
left, right]`` (default none; the zeros are never stored); output int16 ``[4·h2, OH, OW]`` in
Q(RNN2 state) — or, for an int8 map (a conv stem's output inside an int8 CNN), an int8 map in
Q(out) = the int8 format of its calibrated range (at most Q(RNN2 state)): ``y =
sat8(shift_round(h, Q(state) - Q(out)))``; the cells read the int8 values as int16 of the same
Q-format, so they see the same integers — with ``OH = (top + H + bottom - r)//s_r + 1``,
``OW = (left + W + right - c)//s_c + 1`` for patch ``r × c`` and stride ``(s_r, s_c)`` (one
patch covering the map is the single-patch ``RNNPool``, whose output is the vector
``[4·h2]``). Per patch:

1. RNN1 (input ``C``, hidden ``h1``) runs over each of the ``r`` rows (``c`` steps of ``[C]``)
   and each of the ``c`` columns (``r`` steps); its final states are the row and column
   summaries (int16 ``[r + c, h1]`` in Q(RNN1 state)).
2. RNN2 (input ``h1``, hidden ``h2``) runs over the row summaries top to bottom and bottom to
   top, then the column summaries left to right and right to left; its four final states are
   the output channels ``[rows forward, rows backward, columns forward, columns backward]``.

Both RNNs are the ``fastrnn`` op's integer step (:mod:`kiloml.ops.fastgrnn`, readout ``last``,
an identity normalisation that rescales the input to the calibrated Q(normalized)); this op's
quantization, spec, accounting and C are those of the two cells, with their tensors, shifts
and formats stored under ``rnn1.`` and ``rnn2.``. The C kernel (``kl_rnnpool.c``) calls
``kl_fastgrnn_s16`` for every sweep.
"""

import numpy as np

from kiloml.errors import KilomlError
from kiloml.ops.base import Buffer, EmitContext, Emitted, Node, Op, Value, register
from kiloml.ops.constants import MAX_STEPS
from kiloml.ops.fastgrnn import FastRNNOp, cell_params, emit_cell_arrays
from kiloml.ops.fixed import saturate, shift_round
from kiloml.ops.requantize import int8_format

CELLS = ("rnn1", "rnn2")
_CELL_OP = FastRNNOp()


def cell_node(node: Node, cell: str) -> Node:
    """The ``fastrnn`` node of ``cell`` (``rnn1``/``rnn2``): its weights, integer tensors and
    constants are ``node``'s entries prefixed ``<cell>.``."""
    prefix = f"{cell}."

    def part(items: dict) -> dict:
        return {key[len(prefix):]: value for key, value in items.items()
                if key.startswith(prefix)}

    attrs = {"cell": "fastgrnn", "gate": node.attrs["gate"], "update": node.attrs["update"],
             "readout": "last"}
    return Node(f"{node.name}_{cell}", "fastrnn", [], [], attrs, part(node.weights), node.path,
                part(node.q), part(node.consts))


def padding(node: Node) -> list[int]:
    """``[top, bottom, left, right]`` zeros around the map (none by default)."""
    return list(node.attrs.get("padding", [0, 0, 0, 0]))


def _geometry(node: Node, shape: tuple[int, ...]) -> tuple[int, int, int, int, int, int]:
    """``(r, c, s_r, s_c, OH, OW)`` of a ``[C, H, W]`` map (its padding included)."""
    (r, c), (sr, sc) = node.attrs["patch"], node.attrs["stride"]
    top, bottom, left, right = padding(node)
    _, height, width = shape
    return (r, c, sr, sc, (top + height + bottom - r) // sr + 1,
            (left + width + right - c) // sc + 1)


def _patches(x: np.ndarray, node: Node) -> np.ndarray:
    """``[B·OH·OW, C, r, c]`` patches of ``x`` ``[B, C, H, W]`` (zero-padded), row-major over
    the patches."""
    r, c, sr, sc, out_h, out_w = _geometry(node, x.shape[1:])
    top, bottom, left, right = padding(node)
    x = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    patches = [x[:, :, i * sr:i * sr + r, j * sc:j * sc + c]
               for i in range(out_h) for j in range(out_w)]
    return np.stack(patches, axis=1).reshape(-1, x.shape[1], r, c)


def _pool(x: np.ndarray, node: Node, run) -> np.ndarray:
    """RNNPool of ``x`` ``[B, C, H, W]`` with ``run(cell, sequences [N, T, F]) -> [N, H]``."""
    batch, channels = x.shape[:2]
    r, c, _, _, out_h, out_w = _geometry(node, x.shape[1:])
    p = _patches(x, node)
    rows = run("rnn1", p.transpose(0, 2, 3, 1).reshape(-1, c, channels)).reshape(len(p), r, -1)
    cols = run("rnn1", p.transpose(0, 3, 2, 1).reshape(-1, r, channels)).reshape(len(p), c, -1)
    finals = [run("rnn2", seq) for seq in (rows, rows[:, ::-1], cols, cols[:, ::-1])]
    pooled = np.concatenate(finals, axis=1)  # [B·OH·OW, 4·h2]
    pooled = pooled.reshape(batch, out_h, out_w, -1).transpose(0, 3, 1, 2)
    return pooled.reshape(batch, -1) if node.attrs.get("flat") else pooled


@register
class RNNPoolOp(Op):
    """``attrs``: ``patch`` ``[r, c]``, ``stride`` ``[s_r, s_c]``, ``padding`` ``[top, bottom,
    left, right]`` (optional), ``gate``, ``update`` (both cells), ``flat`` (the output as one
    vector ``[4·h2·OH·OW]``, the same memory);
    ``weights``: each cell's ``fastrnn`` weights under ``rnn1.``/``rnn2.`` (``W`` or
    ``W1``/``W2``, ``U`` or ``U1``/``U2``, ``bias_gate``, ``bias_update``, ``zeta``, ``nu``,
    and the identity ``input_mean``/``input_std``)."""

    name = "rnnpool"
    c_files = ("kl_rnnpool.h", "kl_rnnpool.c", *FastRNNOp.c_files)

    def infer(self, node: Node, inputs: list[Value]) -> list[Value]:
        if len(inputs[0].shape) != 3:
            raise KilomlError(f"{node.path}: RNNPool needs a [C, H, W] map, got "
                              f"{list(inputs[0].shape)}")
        channels, height, width = inputs[0].shape
        if inputs[0].dtype not in ("int8", "int16"):
            raise KilomlError(f"{node.path}: RNNPool reads int8 or int16 maps, got "
                              f"{inputs[0].dtype}")
        top, bottom, left, right = pads = padding(node)
        r, c, _, _, out_h, out_w = _geometry(node, inputs[0].shape)
        if min(pads) < 0 or max(top, bottom) >= r or max(left, right) >= c:
            raise KilomlError(f"{node.path}: RNNPool padding {pads} must be below the patch "
                              f"{r}x{c} on each side")
        if r > top + height + bottom or c > left + width + right:
            raise KilomlError(f"{node.path}: RNNPool patch {r}x{c} is larger than the "
                              f"{height}x{width} map" + (f" padded by {pads}" if any(pads)
                                                          else ""))
        if max(r, c) > MAX_STEPS:
            raise KilomlError(f"{node.path}: RNNPool patch sides must be at most {MAX_STEPS} "
                              f"for deployment, got {r}x{c}")
        if node.weights["rnn1.input_mean"].shape != (channels,):
            raise KilomlError(f"{node.path}: RNNPool has "
                              f"{node.weights['rnn1.input_mean'].shape[0]} channels, input "
                              f"{channels}")
        hidden2 = node.weights["rnn2.bias_update"].shape[0]
        shape = (4 * hidden2, out_h, out_w)
        if node.attrs.get("flat"):
            shape = (int(np.prod(shape)),)
        return [Value(node.outputs[0], shape, inputs[0].dtype)]

    def _hidden(self, node: Node) -> tuple[int, int]:
        source = node.q if "rnn1.bias_update" in node.q else node.weights
        return tuple(np.asarray(getattr(source[f"{cell}.bias_update"], "values",
                                        source[f"{cell}.bias_update"])).shape[0]
                     for cell in CELLS)

    # -- float graph -------------------------------------------------------------------------
    def float_forward(self, node, inputs, record):
        cells = {cell: cell_node(node, cell) for cell in CELLS}

        def run(cell, sequences):
            return _CELL_OP.float_forward(
                cells[cell], [sequences], lambda key, value: record(f"{cell}.{key}", value))[0]

        return [_pool(np.asarray(inputs[0], dtype=np.float64), node, run)]

    # -- quantization ------------------------------------------------------------------------
    def quantize(self, node, inputs, outputs, ranges, bits):
        channels, _, _ = inputs[0].shape
        r, c = node.attrs["patch"]
        hidden1, _ = self._hidden(node)
        frac_bits = inputs[0].frac_bits
        for cell, features in (("rnn1", channels), ("rnn2", hidden1)):
            sub = cell_node(node, cell)
            state = Value("h", (0,))
            _CELL_OP.quantize(sub, [Value("x", (max(r, c), features), frac_bits=frac_bits)],
                              [state], lambda key, cell=cell: ranges(f"{cell}.{key}"), bits)
            node.q.update({f"{cell}.{key}": value for key, value in sub.q.items()})
            node.consts.update({f"{cell}.{key}": value for key, value in sub.consts.items()})
            frac_bits = state.frac_bits
        node.consts["out_shift"] = 0
        if outputs[0].dtype == "int8":
            node.consts["out_shift"] = frac_bits - min(frac_bits,
                                                       int8_format(ranges(node.outputs[0])))
        outputs[0].frac_bits = frac_bits - node.consts["out_shift"]

    # -- integer spec ------------------------------------------------------------------------
    def simulate(self, node, inputs, in_values, out_values):
        cells = {cell: cell_node(node, cell) for cell in CELLS}

        def run(cell, sequences):
            return _CELL_OP.simulate(cells[cell], [sequences], [], [])[0]

        pooled = _pool(np.asarray(inputs[0], dtype=np.int64), node, run)
        if out_values[0].dtype == "int8":
            pooled = saturate(shift_round(pooled, node.consts["out_shift"]), 8)
        return [pooled]

    # -- accounting --------------------------------------------------------------------------
    def buffers(self, node, inputs, outputs):
        channels = inputs[0].shape[0]
        r, c = node.attrs["patch"]
        hidden1, hidden2 = self._hidden(node)
        out = [Buffer("summaries", "int16", (r + c) * hidden1),
               Buffer("frame", "int16", max(r, c) * channels),
               Buffer("pooled", "int16", hidden2)]
        sizes: dict[str, Buffer] = {}
        for cell, features, hidden in (("rnn1", channels, hidden1), ("rnn2", hidden1, hidden2)):
            for b in _CELL_OP.buffers(cell_node(node, cell), [Value("x", (1, features))],
                                      [Value("h", (hidden,))]):
                if b.name not in sizes or b.count > sizes[b.name].count:
                    sizes[b.name] = b
        return out + list(sizes.values())

    def storage(self, node):
        return {f"{cell}.{key}": entry for cell in CELLS
                for key, entry in _CELL_OP.storage(cell_node(node, cell)).items()}

    def macs(self, node, inputs, outputs):
        channels = inputs[0].shape[0]
        r, c, _, _, out_h, out_w = _geometry(node, inputs[0].shape)
        hidden1, hidden2 = self._hidden(node)
        rnn1, rnn2 = (cell_node(node, cell) for cell in CELLS)

        def cell_macs(sub, steps, features, hidden):
            return _CELL_OP.macs(sub, [Value("x", (steps, features))], [Value("h", (hidden,))])

        per_patch = (r * cell_macs(rnn1, c, channels, hidden1)
                     + c * cell_macs(rnn1, r, channels, hidden1)
                     + 2 * cell_macs(rnn2, r, hidden1, hidden2)
                     + 2 * cell_macs(rnn2, c, hidden1, hidden2))
        return out_h * out_w * per_patch

    # -- C -------------------------------------------------------------------------------------
    def c_switches(self, node: Node) -> set[str]:
        return _CELL_OP.c_switches(cell_node(node, "rnn1"))  # both cells: the same activations

    def emit(self, node, inputs, outputs, c: EmitContext) -> Emitted:
        channels, height, width = inputs[0].shape
        r, cols, sr, sc, out_h, out_w = _geometry(node, inputs[0].shape)
        hidden1, hidden2 = self._hidden(node)
        parts, params = [], {}
        sweeps = {"rnn1": ((channels, hidden1), {"rows": cols, "columns": r}),
                  "rnn2": ((hidden1, hidden2), {"rows": r, "columns": cols})}
        for cell, ((features, hidden), steps) in sweeps.items():
            sub = cell_node(node, cell)
            cell_context = EmitContext(node, lambda s, cell=cell: c.symbol(f"{cell}_{s}"),
                                       c.pointer, c.buffer)
            arrays, references = emit_cell_arrays(sub, cell_context)
            parts += arrays
            for sweep, count in steps.items():
                symbol = c.symbol(f"{cell}_{sweep}")
                parts.append(cell_params(sub, symbol, count, features, hidden, references, 0))
                params[f"{cell}_{sweep}"] = f"&{symbol}"
        top, _, left, _ = padding(node)
        fields = {**params, "channels": channels, "height": height, "width": width,
                  "pad_top": top, "pad_left": left, "patch_rows": r, "patch_columns": cols,
                  "stride_rows": sr,
                  "stride_columns": sc, "out_rows": out_h, "out_columns": out_w,
                  "hidden1": hidden1, "hidden2": hidden2,
                  "out_shift": node.consts.get("out_shift", 0)}
        members = ",\n".join(f"    .{key} = {value}" for key, value in fields.items())
        parts.append(f"static const kl_rnnpool_params_t {c.symbol('params')} KL_CONST = {{\n"
                     f"{members},\n}};\n")
        buffers = {b.name: c.buffer(b.name) for b in self.buffers(node, inputs, outputs)}
        call = (f"    {{\n        kl_rnnpool_buffers_t buffers;\n"
                f"        buffers.summaries = {buffers['summaries']};\n"
                f"        buffers.frame = {buffers['frame']};\n"
                f"        buffers.pooled = {buffers['pooled']};\n"
                f"        buffers.cell.xn = {buffers['xn']};\n"
                f"        buffers.cell.low_rank = {buffers.get('low_rank', '0')};\n"
                f"        buffers.cell.preact = {buffers['preact']};\n"
                f"        buffers.cell.sum = 0;\n"
                f"        kl_rnnpool_{'s8' if inputs[0].dtype == 'int8' else 's16'}"
                f"(&{c.symbol('params')}, {c.pointer(node.inputs[0])}, "
                f"&buffers, {c.pointer(node.outputs[0])});\n    }}\n")
        return Emitted("\n".join(parts), call)
