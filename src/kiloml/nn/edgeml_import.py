"""Import a model saved by EdgeML's PyTorch ``FastTrainer`` (``edgeml-pytorch`` 0.3.0).

EdgeML writes one ``.npy`` per parameter into a directory: ``W.npy`` or ``W1.npy``/``W2.npy``,
``U.npy`` or ``U1.npy``/``U2.npy``, then ``Bg.npy``, ``Bh.npy``, ``zeta.npy``, ``nu.npy``
(FastGRNN) or ``B.npy``, ``alpha.npy``, ``beta.npy`` (FastRNN), the classifier ``FC.npy``
``[hidden, classes]`` and ``FCbias.npy`` ``[classes]``, and (from its example scripts)
``mean.npy``/``std.npy`` ``[input]``. The classifier reads the last hidden state.

Orientation: EdgeML's FastGRNN cell stores ``W`` as ``[hidden, input]`` (``W1`` ``[rank, input]``,
``W2`` ``[hidden, rank]``) and computes ``x @ W.T``, like kiloml. Its FastRNN cell stores the
transposes (``W`` ``[input, hidden]``, ``W1`` ``[input, rank]``, ``W2`` ``[rank, hidden]``) and
computes ``x @ W``; the importer transposes those.
"""

from pathlib import Path

import numpy as np
import torch

from kiloml.errors import KilomlError
from kiloml.nn.classifier import ModelConfig, SequenceClassifier, build_model


def _load(directory: Path, name: str, required: bool = True) -> np.ndarray | None:
    path = directory / f"{name}.npy"
    if not path.is_file():
        if required:
            raise KilomlError(f"{path}: missing (not an EdgeML FastTrainer model directory?)")
        return None
    try:
        return np.asarray(np.load(path, allow_pickle=False), dtype=np.float32)
    except (OSError, ValueError) as e:
        raise KilomlError(f"{path}: not a readable .npy file ({e})") from None


def _factors(directory: Path, letter: str) -> dict[str, np.ndarray]:
    """``{"W": ...}`` or ``{"W1": ..., "W2": ...}`` as found on disk."""
    full = _load(directory, letter, required=False)
    if full is not None:
        return {letter: full}
    return {f"{letter}{i}": _load(directory, f"{letter}{i}") for i in (1, 2)}


def import_edgeml(directory: Path | str, gate_nonlinearity: str = "sigmoid",
                  update_nonlinearity: str = "tanh") -> SequenceClassifier:
    """Build a :class:`SequenceClassifier` holding an EdgeML FastGRNN/FastRNN model.

    The cell kind is detected from the files (``Bg.npy`` → FastGRNN, ``alpha.npy`` → FastRNN);
    the non-linearities are not saved by EdgeML, so pass the ones the model was trained with.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise KilomlError(f"{directory}: no such directory")
    if (directory / "Bg.npy").is_file():
        kind = "fastgrnn"
    elif (directory / "alpha.npy").is_file():
        kind = "fastrnn"
    else:
        raise KilomlError(f"{directory}: neither Bg.npy (FastGRNN) nor alpha.npy (FastRNN) found")
    w, u = _factors(directory, "W"), _factors(directory, "U")
    if kind == "fastrnn":  # EdgeML's FastRNN multiplies x @ W: store the transposes
        w = {k: v.T for k, v in w.items()}
        u = {k: v.T for k, v in u.items()}
    fc, fc_bias = _load(directory, "FC"), _load(directory, "FCbias").reshape(-1)
    hidden = fc.shape[0]
    input_size = w["W"].shape[1] if "W" in w else w["W1"].shape[1]
    config = ModelConfig(kind=kind, input_size=input_size, num_classes=fc.shape[1],
                         hidden_size=hidden,
                         w_rank=None if "W" in w else w["W1"].shape[0],
                         u_rank=None if "U" in u else u["U1"].shape[0],
                         gate_nonlinearity=gate_nonlinearity,
                         update_nonlinearity=update_nonlinearity)
    model = build_model(config)
    cell = model.rnn.cell
    params = {**w, **u}
    if kind == "fastgrnn":
        params.update(bias_gate=_load(directory, "Bg"), bias_update=_load(directory, "Bh"),
                      zeta=_load(directory, "zeta"), nu=_load(directory, "nu"))
    else:
        params.update(bias_update=_load(directory, "B"), alpha=_load(directory, "alpha"),
                      beta=_load(directory, "beta"))
    with torch.no_grad():
        for name, value in params.items():
            target = getattr(cell, name)
            if value.size != target.numel() or (value.ndim == 2 and value.shape != target.shape):
                raise KilomlError(f"{directory / name}.npy: shape {list(value.shape)} does not "
                                  f"fit a {kind} with input {input_size} and hidden {hidden} "
                                  f"(expected {list(target.shape)})")
            target.copy_(torch.from_numpy(value.reshape(target.shape)))
        model.head.weight.copy_(torch.from_numpy(fc.T.copy()))
        model.head.bias.copy_(torch.from_numpy(fc_bias))
    mean, std = _load(directory, "mean", required=False), _load(directory, "std", required=False)
    if mean is not None and std is not None:
        model.set_normalization(torch.from_numpy(mean.reshape(-1)),
                                torch.from_numpy(std.reshape(-1)))
    return model.eval()
