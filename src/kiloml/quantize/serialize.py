"""Save and load a :class:`QuantizedModel` as one ``.npz`` file (integer arrays + JSON header),
so that verification can re-run the integer simulator without the original run directory."""

import json
from pathlib import Path

import numpy as np

from kiloml.errors import KilomlError
from kiloml.quantize.quantizer import QTensor, QuantizedModel

_HEADER_FIELDS = ("kind", "gate", "update", "readout", "input_size", "hidden_size",
                  "num_classes", "steps", "bits", "frame_stack")
_HEADER_DEFAULTS = {"frame_stack": 1}  # fields added after the first release


def save_quantized(q: QuantizedModel, path: Path) -> None:
    """Write ``q`` to ``path`` (``.npz``)."""
    header = {name: getattr(q, name) for name in _HEADER_FIELDS}
    header["formats"] = q.formats
    header["tensors"] = {name: {"frac_bits": t.frac_bits, "bits": t.bits}
                         for name, t in q.tensors.items()}
    arrays = {f"tensor_{name}": t.values.astype(np.int64) for name, t in q.tensors.items()}
    np.savez(path, header=np.array(json.dumps(header)), **arrays)


def load_quantized(path: Path) -> QuantizedModel:
    """Read a model written by :func:`save_quantized`."""
    try:
        with np.load(path) as data:
            header = json.loads(str(data["header"]))
            arrays = {name: data[f"tensor_{name}"] for name in header["tensors"]}
    except FileNotFoundError:
        raise KilomlError(f"{path}: file not found") from None
    except (KeyError, ValueError, OSError) as e:
        raise KilomlError(f"{path}: not a quantized kiloml model ({e})") from None
    missing = [n for n in _HEADER_FIELDS if n not in header and n not in _HEADER_DEFAULTS]
    if missing:
        raise KilomlError(f"{path}: not a quantized kiloml model (header lacks {missing})")
    q = QuantizedModel(**{name: header.get(name, _HEADER_DEFAULTS.get(name))
                          for name in _HEADER_FIELDS})
    q.formats = {k: int(v) for k, v in header["formats"].items()}
    q.tensors = {name: QTensor(arrays[name].astype(np.int64), int(meta["frac_bits"]),
                               int(meta["bits"]))
                 for name, meta in header["tensors"].items()}
    return q
