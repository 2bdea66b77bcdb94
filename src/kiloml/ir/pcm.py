"""Raw int16 PCM → label: the integer front end followed by the integer graph (the spec of
``kiloml_predict_pcm`` in ``deploy/c/kiloml_pcm.c``).

1. **Front end**: :func:`kiloml.ops.logmel.log_mel_q10` turns the PCM into int16 log-mel
   features ``[frames, n_mels]`` in Q10 (``OUT_FRAC_BITS``). The model runs a fixed number of
   steps, so the signal must give exactly as many frames as the graph's input has steps (1 s
   gives 99 at 16 and 8 kHz, which is what training used: every clip was fixed to 1 s), and
   ``n_mels`` must equal the graph's features per step.
2. **Conversion** Q10 → Q``f`` with ``f`` the graph input's Q-format:
   ``x = sat16(shift_round(v, 10 - f))``, i.e. for ``f < 10`` a right shift by ``10 - f``
   rounding half up, for ``f > 10`` an exact left shift saturated to int16, for ``f = 10`` the
   identity (:func:`features_to_input`). (The float path instead rounds the float features to
   Q``f`` once, see :func:`kiloml.ir.quantize.quantize_input`; the two can differ by the front
   end's error plus one rounding, at most a few LSB of Q``f``.)
3. **Model**: :func:`kiloml.ir.simulate.simulate` on those int16 inputs.
"""

import numpy as np

from kiloml.errors import KilomlError
from kiloml.ir.graph import Graph
from kiloml.ir.simulate import simulate
from kiloml.ops.fixed import saturate, shift_round
from kiloml.ops.logmel import OUT_FRAC_BITS, LogMelTables, log_mel_q10


def input_shift(graph: Graph) -> int:
    """Right shift (negative: left) from the front end's Q10 to the graph's input format."""
    return OUT_FRAC_BITS - graph.values[graph.input].frac_bits


def features_to_input(graph: Graph, features_q10: np.ndarray) -> np.ndarray:
    """int16 Q10 log-mel features (any shape) → int16 in the graph input's Q-format."""
    values = np.asarray(features_q10, dtype=np.int64)
    return saturate(shift_round(values, input_shift(graph)), 16).astype(np.int16)


def check_compatible(graph: Graph, tables: LogMelTables) -> None:
    """Raise :class:`KilomlError` unless the front end's features of one second fit the
    graph's input (``n_mels`` features per frame, one frame per step)."""
    config = tables.config
    k = graph.meta.get("frame_stack", 1)
    steps, features = graph.values[graph.input].shape
    if k != 1:
        raise KilomlError(f"the front end feeds one frame per step, the model stacks "
                          f"{k} frames per step")
    if config.n_mels != features:
        raise KilomlError(f"the front end gives {config.n_mels} features per frame, the "
                          f"model takes {features}")
    if config.num_frames(config.sample_rate) != steps:
        raise KilomlError(f"one second at {config.sample_rate} Hz gives "
                          f"{config.num_frames(config.sample_rate)} frames, the model runs "
                          f"{steps} steps")


def pcm_input(graph: Graph, tables: LogMelTables, pcm: np.ndarray) -> np.ndarray:
    """The graph input int16 ``[steps, features]`` of int16 ``pcm`` ``[n]``; the signal must
    give exactly ``steps`` frames."""
    check_compatible(graph, tables)
    steps = graph.values[graph.input].shape[0]
    pcm = np.asarray(pcm)
    if pcm.ndim == 1 and pcm.size and tables.config.num_frames(len(pcm)) != steps:
        raise KilomlError(f"{len(pcm)} samples give {tables.config.num_frames(len(pcm))} "
                          f"frames; the model runs {steps} steps (1 s at "
                          f"{tables.config.sample_rate} Hz gives "
                          f"{tables.config.num_frames(tables.config.sample_rate)})")
    return features_to_input(graph, log_mel_q10(pcm, tables))


def simulate_pcm_batch(graph: Graph, tables: LogMelTables, pcm: np.ndarray) -> np.ndarray:
    """int32 logits ``[N, C]`` of int16 signals ``pcm`` ``[N, n]`` (one length for all)."""
    inputs = np.stack([pcm_input(graph, tables, x) for x in np.asarray(pcm)])
    return simulate(graph, inputs).astype(np.int32)


def simulate_pcm(graph: Graph, tables: LogMelTables, pcm: np.ndarray) -> np.ndarray:
    """int32 logits ``[C]`` of one int16 signal ``pcm`` ``[n]``: what ``kiloml_predict_pcm``
    writes."""
    return simulate(graph, pcm_input(graph, tables, pcm)[None])[0].astype(np.int32)
