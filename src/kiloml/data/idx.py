"""The IDX file format of MNIST and Fashion-MNIST (plain or gzip-compressed).

Layout: two zero bytes, a type byte, a dimension count ``d``, ``d`` big-endian uint32 sizes,
then the values in C order, big-endian. Types: ``0x08`` uint8, ``0x09`` int8, ``0x0B`` int16,
``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64.
"""

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from kiloml.errors import KilomlError

DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_idx(path: Path) -> np.ndarray:
    """The array stored in an IDX file (``.gz`` is decompressed), in native byte order."""
    path = Path(path)
    try:
        with _open(path) as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise KilomlError(f"{path}: corrupt or unreadable IDX file ({e})") from None
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in DTYPES:
        raise KilomlError(f"{path}: not an IDX file (bad magic number {data[:4].hex()})")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise KilomlError(f"{path}: truncated IDX header")
    shape = struct.unpack_from(f">{ndim}I", data, 4)
    dtype = np.dtype(DTYPES[data[2]])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise KilomlError(f"{path}: IDX header says {list(shape)} ({expected} bytes) but the "
                          f"file holds {len(data) - header} bytes of values")
    values = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write ``array`` as IDX (gzip-compressed when ``path`` ends in ``.gz``)."""
    array = np.asarray(array)
    codes = {np.dtype(v).newbyteorder("="): k for k, v in DTYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        raise KilomlError(f"{path}: IDX cannot store dtype {array.dtype}")
    body = np.ascontiguousarray(array, dtype=np.dtype(DTYPES[code])).tobytes()
    data = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + body
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(data)
