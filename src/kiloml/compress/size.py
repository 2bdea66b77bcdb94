"""Model size and compute as deployed: bytes of every stored tensor and MACs per inference.

Storage rules (the deployment code uses exactly these formats):

* A matrix is stored **dense** (``rows*cols`` values), **sparse CSR** (the nonzero values, one
  column index per nonzero (``uint8`` when ``cols <= 256``, else ``uint16``) and ``rows + 1``
  ``uint16`` row pointers) or **blocked sparse** (when ``cols`` is a multiple of 4, at most
  1,024, at most 511 for int8, and the matrix's kernel reads whole rows: every aligned block of
  4 columns of a row holding a nonzero, as its 4 values and one ``uint8`` block index, and
  ``rows + 1`` ``uint16`` row pointers counting blocks), whichever is smallest (ties: dense,
  then CSR); with ``by="speed"`` (``kiloml export --storage-by speed``), whichever needs the
  fewest predicted Cortex-M4 instructions (:mod:`kiloml.compress.kernel_cost`; ties: the
  smaller), when that is at least :data:`SPEED_MARGIN` fewer than the smallest format's
  prediction (else the smallest: within the cost model's error the smaller format may well be
  the faster one).
* Low-rank factors are stored separately (``W1``, ``W2``), never multiplied out.
* Vectors (biases, normalisation mean/std) are dense; scalars (``zeta``, ``nu``, ``alpha``,
  ``beta``) are one value each. With integer weights, each tensor also carries a one-byte
  power-of-two scale (shift), and normalisation and scalars stay int16 (see
  :func:`model_storage`), so the integer sizes equal what ``kiloml export`` writes. A model's
  ``deployed_tensors()`` names what it stores when that is not its state dict: a GRU or LSTM
  one matrix and one scale per gate and one bias per gate (two for the GRU's ``n``), a DS-CNN
  its convolutions with BatchNorm folded in.

``value_bytes`` is the stored width of one value: 4 for float32, 2 for int16, 1 for int8.
"""

from dataclasses import dataclass, replace

import torch
from torch import nn

from kiloml.compress.kernel_cost import predicted_instructions
from kiloml.nn.classifier import SequenceClassifier

FLOAT32_BYTES = 4
#: Columns of one block of the blocked-sparse format (``kiloml.ops.constants.BLOCK_WIDTH``).
BLOCK = 4
#: Widest matrix stored blocked (uint8 block indices).
BLOCKED_MAX_COLS = 256 * BLOCK
#: Longest int8 row of an int32 sum (``kiloml.ops.constants.INT8_ROW_LIMIT``): longer int8 rows
#: are never stored blocked (the row-by-row kernel reads them).
INT8_ROW_LIMIT = 511
#: ``tensor_storage``'s rules: fewest bytes, or fewest predicted instructions.
STORAGE_RULES = ("bytes", "speed")
#: The speed rule leaves the smallest format only for one predicted to need at least this
#: fraction fewer instructions: the 90th percentile of the cost model's relative error on its
#: calibration matrices (``python benchmarks/kernel_costs.py``).
SPEED_MARGIN = 0.05


@dataclass(frozen=True)
class TensorStorage:
    """How one tensor is stored: its name, format and size."""

    name: str
    shape: tuple[int, ...]
    nonzeros: int
    format: str  # "dense", "csr", "blocked" or "scalar"
    bytes: int
    stored: int = 0  # weights the kernel reads: rows*cols, nonzeros, or 4 per block
    predicted_instructions: float | None = None  # Cortex-M4, integer widths only


def csr_bytes(rows: int, cols: int, nonzeros: int, value_bytes: int) -> int:
    """Bytes of a CSR matrix: values, column indices and ``rows + 1`` uint16 row pointers."""
    index_bytes = 1 if cols <= 256 else 2
    return nonzeros * (value_bytes + index_bytes) + (rows + 1) * 2


def blocked_bytes(rows: int, blocks: int, value_bytes: int) -> int:
    """Bytes of a blocked-sparse matrix: ``blocks`` blocks of 4 values and a uint8 block index,
    and ``rows + 1`` uint16 row pointers."""
    return blocks * (BLOCK * value_bytes + 1) + (rows + 1) * 2


def nonzero_blocks(tensor: torch.Tensor) -> int | None:
    """Aligned blocks of 4 columns holding a nonzero, or ``None`` when the matrix cannot be
    stored blocked (not 2-D, ``cols`` not a multiple of 4 or above 1,024)."""
    if tensor.dim() != 2 or tensor.shape[1] % BLOCK or tensor.shape[1] > BLOCKED_MAX_COLS:
        return None
    return int((tensor.reshape(tensor.shape[0], -1, BLOCK) != 0).any(-1).sum())


def tensor_storage(name: str, tensor: torch.Tensor, value_bytes: int,
                   scale_bytes: int = 0, by: str = "bytes", blocked: bool = True
                   ) -> TensorStorage:
    """The deployed storage of ``tensor`` (see the module docstring for the choice); without
    ``blocked`` (matrices the C reads one row at a time, and int8 rows past 511 entries) never
    blocked."""
    if by not in STORAGE_RULES:
        raise ValueError(f"storage rule must be one of {STORAGE_RULES}, got {by!r}")
    shape = tuple(tensor.shape)
    nonzeros = int(torch.count_nonzero(tensor))
    numel = tensor.numel()
    if numel == 1:
        return TensorStorage(name, shape, nonzeros, "scalar", value_bytes)
    candidates = [TensorStorage(name, shape, nonzeros, "dense", numel * value_bytes + scale_bytes,
                                numel)]
    if tensor.dim() == 2 and min(shape) > 1:
        candidates.append(TensorStorage(
            name, shape, nonzeros, "csr",
            csr_bytes(shape[0], shape[1], nonzeros, value_bytes) + scale_bytes, nonzeros))
        blocks = nonzero_blocks(tensor)
        if value_bytes == 1 and shape[1] > INT8_ROW_LIMIT:
            blocks = None
        if blocks is not None and blocked:
            candidates.append(TensorStorage(
                name, shape, nonzeros, "blocked",
                blocked_bytes(shape[0], blocks, value_bytes) + scale_bytes, BLOCK * blocks))
    if value_bytes in (1, 2) and len(shape) == 2:
        empty = int((~(tensor != 0).any(dim=1)).sum())
        candidates = [replace(c, predicted_instructions=predicted_instructions(
            c.format, 8 * value_bytes, shape[0], shape[1], c.stored,
            empty_rows=0 if c.format == "dense" else empty)) for c in candidates]
    smallest = min(candidates, key=lambda c: c.bytes)
    if by == "speed" and candidates[0].predicted_instructions is not None:
        fastest = min(candidates, key=lambda c: (c.predicted_instructions, c.bytes))
        if fastest.predicted_instructions < (1 - SPEED_MARGIN) * smallest.predicted_instructions:
            return fastest
    return smallest


def deployed_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors a model ships, by name: its own ``deployed_tensors()`` when it has one (a
    GRU/LSTM per gate, a DS-CNN with each BatchNorm folded into its convolution and no running
    statistics), else its state dict."""
    if hasattr(model, "deployed_tensors"):
        return model.deployed_tensors()
    return model.state_dict()


def model_storage(model: SequenceClassifier,
                  value_bytes: int = FLOAT32_BYTES) -> list[TensorStorage]:
    """Storage of every tensor the deployed model needs (weights, biases, scalars, head,
    normalisation; see :func:`deployed_tensors`), at ``value_bytes`` per value.

    Integer widths (2 or 1) follow ``kiloml export``: every weight tensor carries a one-byte
    power-of-two scale (one per row for the tensors a model's ``scale_counts()`` names, such
    as the DS-CNN's depthwise kernels: ``{name: rows}``); the normalisation and the tensors a
    model's ``int16_tensors()`` names are int16 whatever the weight width (the mean in the
    input's format, the inverse standard deviation and the named tensors with a scale byte);
    scalars are Q15 int16. The matrices a model's ``unblocked_tensors()`` names (read one row
    at a time by their kernels) are never stored blocked.
    """
    tensors = deployed_tensors(model)
    scales = model.scale_counts() if hasattr(model, "scale_counts") else {}
    wide = model.int16_tensors() if hasattr(model, "int16_tensors") else ()
    unblocked = model.unblocked_tensors() if hasattr(model, "unblocked_tensors") else ()
    if value_bytes == FLOAT32_BYTES:
        return [tensor_storage(name, tensor.detach(), value_bytes,
                               blocked=name not in unblocked)
                for name, tensor in tensors.items()]
    out = []
    for name, tensor in tensors.items():
        tensor = tensor.detach()
        if name.rpartition(".")[2] in ("input_mean", "input_std"):  # ShaRNN: upper.input_*
            out.append(tensor_storage(name, tensor, 2, int(name.endswith("input_std"))))
        elif tensor.numel() == 1:
            out.append(tensor_storage(name, tensor, 2))
        elif name in wide:
            out.append(tensor_storage(name, tensor, 2, 1, blocked=name not in unblocked))
        else:
            out.append(tensor_storage(name, tensor, value_bytes, scales.get(name, 1),
                                      blocked=name not in unblocked))
    return out


def model_size_bytes(model: SequenceClassifier, value_bytes: int = FLOAT32_BYTES) -> int:
    """Total deployed bytes (see the module docstring for the storage rules)."""
    return sum(t.bytes for t in model_storage(model, value_bytes))


def count_parameters(model: SequenceClassifier) -> tuple[int, int]:
    """``(params_total, params_nonzero)`` over trainable parameters (for a model with
    ``deployed_tensors()``, over the deployed weights without the normalisation)."""
    if hasattr(model, "deployed_tensors"):
        weights = [t for name, t in model.deployed_tensors().items()
                   if name.rpartition(".")[2] not in ("input_mean", "input_std")]
        return sum(t.numel() for t in weights), sum(_nnz(t) for t in weights)
    total = sum(p.numel() for p in model.parameters())
    nonzero = sum(int(torch.count_nonzero(p)) for p in model.parameters())
    return total, nonzero


def _nnz(tensor: torch.Tensor) -> int:
    return int(torch.count_nonzero(tensor))


def macs_per_inference(model: SequenceClassifier, steps: int) -> int:
    """Multiply-accumulates for one sequence of ``steps`` time steps.

    Counted from the stored structure: one MAC per stored nonzero of every matrix per step (low-rank
    factors separately), plus the elementwise multiplies of the state update (FastGRNN: 3 per
    hidden unit — ``z*h``, ``σ(ζ)*z*h~``-style terms — FastRNN: 2, GRU: 3, LSTM: 3), one per feature
    for normalisation, and the head once (``C*H`` plus ``H`` per step for a mean readout).
    A model with a ``macs(steps)`` method (the DS-CNN) counts itself; a cascade (``tiers()``)
    counts both tiers, as when its lower tier fires.
    """
    if hasattr(model, "tiers"):
        return sum(macs_per_inference(tier, steps) for tier in model.tiers())
    if hasattr(model, "macs"):
        return model.macs(steps)
    c = model.config
    steps //= c.frame_stack  # frames stacked side by side: fewer, wider steps
    per_step = c.rnn_input_size
    elementwise = {"fastgrnn": 3, "fastrnn": 2, "gru": 3, "lstm": 3}[c.kind]
    if c.kind in ("fastgrnn", "fastrnn"):
        for cell in model.fast_cells():
            names = cell.matrix_parameter_names()
            per_step += sum(_nnz(getattr(cell, n)) for n in names["W"] + names["U"])
            per_step += elementwise * c.hidden_size
    else:
        for name, param in model.rnn.named_parameters():
            if name.startswith("weight"):
                per_step += _nnz(param)
        per_step += elementwise * c.hidden_size * (2 if c.bidirectional else 1)
    directions = 2 if c.bidirectional else 1
    readout = directions * c.hidden_size if c.readout == "mean" else 0
    return steps * (per_step + readout) + _nnz(model.head.weight)
