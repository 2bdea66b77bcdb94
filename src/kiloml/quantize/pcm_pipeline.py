"""Raw int16 PCM → label: the integer front end followed by the integer model (the spec of
``kiloml_predict_pcm`` in ``deploy/c/kiloml_pcm.c``).

1. **Front end**: :func:`kiloml.quantize.logmel.log_mel_q10` turns the PCM into int16 log-mel
   features ``[frames, n_mels]`` in Q10 (``OUT_FRAC_BITS``). The model runs a fixed number of
   steps, so the signal must give exactly ``q.steps`` frames (1 s gives 99 at 16 and 8 kHz,
   which is what training used: every clip was fixed to 1 s), and ``n_mels`` must equal the
   model's ``input_size``.
2. **Conversion** Q10 → Q``f`` with ``f = q.formats["input"]`` (the model's int16 input format):
   ``x = sat16(shift_round(v, 10 - f))``, i.e. for ``f < 10`` a right shift by ``10 - f``
   rounding half up (``(v + 2^(9-f)) >> (10-f)``), for ``f > 10`` an exact left shift by
   ``f - 10`` saturated to int16, for ``f = 10`` the identity (:func:`features_to_input`).
   This is :mod:`kiloml.quantize.formats`' ``shift_round``/``saturate``, the twins of
   ``kl_shift_round_s64``/``kl_sat16`` in C. (The float path instead rounds the float
   features to Q``f`` once, see :func:`~kiloml.quantize.quantizer.quantize_input`; the two can
   differ by the front end's error plus one rounding, at most a few LSB of Q``f``.)
3. **Model**: :func:`kiloml.quantize.simulator.simulate_batch` on those int16 inputs.
"""

import numpy as np

from kiloml.errors import KilomlError
from kiloml.quantize.formats import saturate, shift_round
from kiloml.quantize.logmel import OUT_FRAC_BITS, LogMelTables, log_mel_q10
from kiloml.quantize.quantizer import QuantizedModel
from kiloml.quantize.simulator import simulate_batch


def input_shift(q: QuantizedModel) -> int:
    """Right shift (negative: left) from the front end's Q10 to the model's input format."""
    return OUT_FRAC_BITS - q.formats["input"]


def features_to_input(q: QuantizedModel, features_q10: np.ndarray) -> np.ndarray:
    """int16 Q10 log-mel features (any shape) → int16 in Q``formats["input"]``."""
    values = np.asarray(features_q10, dtype=np.int64)
    return saturate(shift_round(values, input_shift(q)), 16).astype(np.int16)


def check_compatible(q: QuantizedModel, tables: LogMelTables) -> None:
    """Raise :class:`KilomlError` unless the front end's features of one second fit the
    model's input (``n_mels`` features per frame, ``steps`` frames)."""
    config = tables.config
    if q.frame_stack != 1:
        raise KilomlError(f"the front end feeds one frame per step, the model stacks "
                          f"{q.frame_stack} frames per step")
    if config.n_mels != q.input_size:
        raise KilomlError(f"the front end gives {config.n_mels} features per frame, the "
                          f"model takes {q.input_size}")
    if config.num_frames(config.sample_rate) != q.steps:
        raise KilomlError(f"one second at {config.sample_rate} Hz gives "
                          f"{config.num_frames(config.sample_rate)} frames, the model runs "
                          f"{q.steps} steps")


def pcm_input(q: QuantizedModel, tables: LogMelTables, pcm: np.ndarray) -> np.ndarray:
    """The model input int16 ``[steps, input_size]`` (Q``formats["input"]``) of int16 ``pcm``
    ``[n]``; the signal must give exactly ``q.steps`` frames."""
    check_compatible(q, tables)
    pcm = np.asarray(pcm)
    if pcm.ndim == 1 and pcm.size and tables.config.num_frames(len(pcm)) != q.steps:
        raise KilomlError(f"{len(pcm)} samples give {tables.config.num_frames(len(pcm))} "
                          f"frames; the model runs {q.steps} steps (1 s at "
                          f"{tables.config.sample_rate} Hz gives "
                          f"{tables.config.num_frames(tables.config.sample_rate)})")
    return features_to_input(q, log_mel_q10(pcm, tables))


def simulate_pcm_batch(q: QuantizedModel, tables: LogMelTables, pcm: np.ndarray) -> np.ndarray:
    """int32 logits ``[N, C]`` of int16 signals ``pcm`` ``[N, n]`` (one length for all)."""
    inputs = np.stack([pcm_input(q, tables, x) for x in np.asarray(pcm)])
    return simulate_batch(q, inputs).astype(np.int32)


def simulate_pcm(q: QuantizedModel, tables: LogMelTables, pcm: np.ndarray) -> np.ndarray:
    """int32 logits ``[C]`` (Q``formats["logits"]``) of one int16 signal ``pcm`` ``[n]``:
    what ``kiloml_predict_pcm`` writes."""
    return simulate_batch(q, pcm_input(q, tables, pcm)[None])[0].astype(np.int32)
