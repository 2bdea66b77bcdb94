"""Mono 16-bit PCM WAV parsing from the RIFF bytes, with the problem named when it fails."""

import struct

import numpy as np

WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
FORMAT_NAMES = {0x0003: "IEEE float", 0x0006: "A-law", 0x0007: "mu-law", 0x0002: "ADPCM"}


class WavError(ValueError):
    """The bytes are not a readable mono 16-bit PCM WAV file; the message says why."""


def parse_wav(data: bytes) -> tuple[np.ndarray, int]:
    """Samples ``[n]`` int16 and sample rate (Hz) of a mono 16-bit PCM WAV file's bytes.

    Raises ``WavError`` for a file that is not RIFF/WAVE, not PCM, not 16-bit, not mono,
    has no ``fmt``/``data`` chunk, or is truncated (fewer bytes than its data chunk declares).
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavError("not a WAV file (no RIFF/WAVE header)")
    fmt = None
    offset = 12
    while offset + 8 <= len(data):
        chunk_id, size = struct.unpack_from("<4sI", data, offset)
        body = offset + 8
        if chunk_id == b"fmt ":
            if size < 16 or body + 16 > len(data):
                raise WavError("truncated fmt chunk")
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
            if tag == WAVE_FORMAT_EXTENSIBLE and size >= 40 and body + 26 <= len(data):
                tag = struct.unpack_from("<H", data, body + 24)[0]  # the sub-format GUID's tag
            fmt = tag, channels, rate, bits
        elif chunk_id == b"data":
            if fmt is None:
                raise WavError("data chunk before the fmt chunk")
            return _samples(data, body, size, *fmt)
        offset = body + size + (size & 1)  # chunks are padded to even sizes
    raise WavError("no fmt chunk" if fmt is None else "no data chunk (truncated file?)")


def _samples(data: bytes, body: int, size: int, tag: int, channels: int, rate: int,
             bits: int) -> tuple[np.ndarray, int]:
    if tag != WAVE_FORMAT_PCM:
        raise WavError(f"{FORMAT_NAMES.get(tag, f'format tag {tag:#06x}')} audio; "
                       "16-bit PCM expected")
    if bits != 16:
        raise WavError(f"{bits}-bit PCM; 16-bit PCM expected")
    if channels != 1:
        raise WavError(f"{channels} channels; mono expected")
    if rate <= 0:
        raise WavError(f"invalid sample rate {rate}")
    available = len(data) - body
    if size > available:
        raise WavError(f"truncated: the data chunk declares {size} bytes but only {available} "
                       "are present")
    if size < 2:
        raise WavError("no samples")
    return np.frombuffer(data, dtype="<i2", count=size // 2, offset=body), rate
