"""``kiloml_logmel_tables.h``: the constants of the C log-mel front end for one configuration.

The library ships the header for the default 16 kHz configuration
(``deploy/c/kiloml_logmel_tables.h``, checked against :func:`logmel_tables_header` by the tests);
for another sample rate write a new one with :func:`write_logmel_tables` next to
``kiloml_logmel.c`` (it replaces the shipped one) or earlier on the include path.
"""

from pathlib import Path

import numpy as np

from kiloml.data.logmel import LogMelConfig
from kiloml.deploy.codegen import fill_template
from kiloml.ops.logmel import LOG2_TABLE_BITS, LogMelTables, make_tables
from kiloml.ops.matrix import c_array

HEADER_NAME = "kiloml_logmel_tables.h"


def _table(ctype: str, name: str, values: np.ndarray) -> str:
    """A table as C: ordinary ``const`` data (the front end reads it with plain loads)."""
    return c_array(ctype, name, values, qualifier="")


def _half_window(tables: LogMelTables) -> np.ndarray:
    return tables.window_q30[:(len(tables.window_q30) + 1) // 2]


def tables_flash_bytes(tables: LogMelTables) -> int:
    """Bytes of the constant arrays in the header."""
    window = 4 * len(_half_window(tables)) if tables.config.window != "rectangular" else 0
    return (window + 4 * len(tables.sin_q30) + len(tables.mel_filter)
            + 2 * tables.mel_weight.size + 4 * len(tables.log2_q16))


def logmel_tables_header(config: LogMelConfig | None = None) -> str:
    """The text of ``kiloml_logmel_tables.h`` for ``config`` (default: 16 kHz)."""
    config = config or LogMelConfig()
    tables = make_tables(config)
    windowed = config.window != "rectangular"
    window = (_table("int32_t", "kl_logmel_window_q30", _half_window(tables)) if windowed
              else "/* Rectangular window: no table. */\n")
    description = (f"{config.sample_rate} Hz: {config.win_length}-sample frames every "
                   f"{config.hop_length} samples, {config.n_fft}-point FFT, {config.n_mels} mel "
                   f"filters,\n * {config.window} window, pre-emphasis {config.pre_emphasis}, "
                   f"floor {config.floor:g}")
    return fill_template("kiloml_logmel_tables.h.in", {
        "DESCRIPTION": description, "FLASH_BYTES": tables_flash_bytes(tables),
        "SAMPLE_RATE": config.sample_rate, "WIN_LENGTH": config.win_length,
        "HOP_LENGTH": config.hop_length, "FFT_BITS": tables.fft_bits, "N_MELS": config.n_mels,
        "PRE_EMPHASIS_Q15": tables.pre_emphasis_q15, "WINDOWED": int(windowed),
        "FIRST_BIN": tables.first_bin, "LAST_BIN": tables.last_bin,
        "FLOOR_Q10": tables.floor_q10, "LOG2_TABLE_BITS": LOG2_TABLE_BITS,
        "WINDOW_TABLE": window,
        "SIN_TABLE": _table("int32_t", "kl_logmel_sin_q30", tables.sin_q30),
        "MEL_FILTER_TABLE": _table("uint8_t", "kl_logmel_mel_filter", tables.mel_filter),
        "MEL_WEIGHT_TABLE": _table("uint16_t", "kl_logmel_mel_weight_q15",
                                    np.asarray(tables.mel_weight)),
        "LOG2_TABLE": _table("int32_t", "kl_logmel_log2_q16", tables.log2_q16)})


def write_logmel_tables(path: Path, config: LogMelConfig | None = None) -> Path:
    """Write :func:`logmel_tables_header` to ``path`` (a directory gets ``HEADER_NAME``)."""
    path = Path(path)
    if path.is_dir():
        path = path / HEADER_NAME
    path.write_text(logmel_tables_header(config))
    return path
