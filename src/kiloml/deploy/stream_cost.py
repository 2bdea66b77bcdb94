"""Instructions per second of stream on an emulated Cortex-M, measured on the model's own C.

Each part of a model is quantized (Q-formats from the calibration windows), generated as C
and built for the target once; QEMU's instruction-counting plugin counts every call:

- a **ShaRNN** runs its streaming C API (``kiloml_stream_push``) on the stream's first
  ``windows`` windows of frames, every push counted and every decision checked against the
  integer streaming spec. A brick costs one push that reads the brick and decides plus
  ``k - 1`` pushes that only copy a frame; per second: that times ``rate / k``;
- an **EMI-FastGRNN** runs its streaming C API on the stream's first
  :data:`EARLY_EXIT_FRAMES` frames, every push counted (instances stop at their exit step,
  so only the steps actually read are counted) and every decision checked against the integer
  spec; per second: the mean per push times ``rate``;
- any other model (a sliding-window FastGRNN, a tier of a cascade) runs ``kiloml_predict`` on
  ``windows`` windows of the stream, each output checked against the simulator; per second:
  the mean per window times the decisions per second (``rate / hop``) times the share of
  decisions that call it (1, or for a cascade's upper tier the fraction of upper-tier calls).
"""

import tempfile
from pathlib import Path

import numpy as np
from torch import nn

from kiloml.deploy.codegen import c_sources, generate_model
from kiloml.deploy.early_exit import has_early_exit
from kiloml.deploy.export import write_sources
from kiloml.deploy.stream import is_streamable, stream_sizes
from kiloml.deploy.stream_verify import run_stream, simulate_stream
from kiloml.deploy.targets import TARGETS, Build
from kiloml.deploy.verify import run_model
from kiloml.errors import KilomlError
from kiloml.ir import quantize_input, quantize_model, simulate
from kiloml.ir.early_exit import EMIStream, early_exit_settings

#: Frames of the stream an EMI-FastGRNN's pushes are counted on (early exit depends on them).
EARLY_EXIT_FRAMES = 6000


def missing_toolchain(target: str) -> str | None:
    """Why ``target`` cannot run here (with the install command), or ``None``."""
    missing = TARGETS[target].missing()
    if not missing:
        return None
    return f"{target} toolchain missing ({', '.join(missing)}): {TARGETS[target].install_hint()}"


def part_instructions(module: nn.Module, calib: np.ndarray, frames: np.ndarray, steps: int,
                      hop: int, rate: float, bits: int, target: str, work: Path,
                      windows: int = 4, early_exit_frames: int = EARLY_EXIT_FRAMES) -> dict:
    """Instructions of one part on ``target`` (see the module docstring): ``per_decision``
    (a deciding push plus ``k - 1`` others for a ShaRNN, else one window) and
    ``per_second`` at one decision every ``hop`` frames of a stream of ``rate`` frames per
    second, and how they were counted."""
    graph = quantize_model(module.eval(), calib, bits)
    generated = generate_model(graph, "streaming cost")
    files = write_sources(generated, work / "src")
    sources = [work / "src" / "model.c", *(work / "src" / f for f in c_sources(files))]
    build = Build(TARGETS[target], sources, [work / "src"], work / "build").compile()
    width = graph.values[graph.output].count
    if is_streamable(graph):
        brick = stream_sizes(graph)["brick"]
        stream = quantize_input(graph, frames[None, :windows * steps])[0]
        decisions, run = run_stream(build, [stream], width, count_instructions=True)
        if decisions != simulate_stream(graph, [stream]):
            raise KilomlError(f"{target}: the C stream differs from the integer spec")
        counts = _counts(run, target)
        deciding = np.zeros(len(counts), dtype=bool)
        deciding[[t for _, t, _, _ in decisions]] = True
        reading = np.zeros(len(counts), dtype=bool)
        reading[brick - 1::brick] = True
        per_decision = counts[deciding].mean() + (brick - 1) * counts[~reading].mean()
        how = (f"kiloml_stream_push on {len(counts)} frames, {len(decisions)} decisions: "
               f"{counts[deciding].mean():,.0f} per deciding push, "
               f"{counts[~reading].mean():,.0f} per other push")
        return {"per_decision": float(per_decision), "per_second": per_decision * rate / brick,
                "how": how}
    if has_early_exit(graph):
        return _early_exit_instructions(graph, build, frames, rate, target, early_exit_frames)
    starts = np.arange(windows) * hop
    x = np.stack([frames[s:s + steps] for s in starts if s + steps <= len(frames)])
    inputs = quantize_input(graph, x)
    _, outputs, run = run_model(build, inputs, width, count_instructions=True)
    if not np.array_equal(outputs, simulate(graph, inputs)):
        raise KilomlError(f"{target}: kiloml_predict differs from the integer simulator")
    counts = _counts(run, target)
    return {"per_decision": float(counts.mean()), "per_second": counts.mean() * rate / hop,
            "how": f"kiloml_predict on {len(counts)} windows: {counts.mean():,.0f} per window"}


def _early_exit_instructions(graph, build: Build, frames: np.ndarray, rate: float, target: str,
                             count: int) -> dict:
    """An EMI-FastGRNN's pushes on the stream's first ``count`` frames (see the module
    docstring), checked against :class:`kiloml.ir.early_exit.EMIStream`."""
    stream = quantize_input(graph, frames[None, :count])[0]
    width = graph.values[graph.output].count
    decisions, run = run_stream(build, [stream], width, count_instructions=True)
    spec, expected = EMIStream(graph), []
    for t, frame in enumerate(stream):
        out = spec.push(frame)
        if out is not None:
            expected.append((0, t, int(out[0]), tuple(int(v) for v in out[1])))
    if decisions != expected:
        raise KilomlError(f"{target}: the C stream differs from the integer spec")
    counts = _counts(run, target)
    s = early_exit_settings(graph)
    reading = np.zeros(len(counts), dtype=bool)
    reading[s["width"] - 1::s["stride"]] = True
    steps = np.asarray(spec.steps, dtype=np.float64)
    how = (f"kiloml_stream_push on the first {len(counts):,} frames "
           f"({len(counts) / rate:.0f} s), {len(steps)} instances reading {steps.mean():.1f} "
           f"of {s['width']} steps: {counts[reading].mean():,.0f} per reading push, "
           f"{counts[~reading].mean():,.0f} per other push")
    return {"per_decision": float(counts.mean() * s["stride"]),
            "per_second": float(counts.mean() * rate), "how": how,
            "steps_per_instance": float(steps.mean()), "frames_counted": len(counts)}


def stream_instructions(parts: list[tuple[str, nn.Module, float]], calib: np.ndarray,
                        frames: np.ndarray, steps: int, hop: int, rate: float, bits: int = 8,
                        target: str = "cortex-m4") -> dict:
    """Instructions per second of stream of ``parts`` (``(name, module, share of decisions
    that run it)``): ``{"per_second", "parts": {name: part}}``, or ``{"skipped": why}`` when
    the target's toolchain is missing."""
    why = missing_toolchain(target)
    if why is not None:
        return {"skipped": why}
    out = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, module, share in parts:
            part = part_instructions(module, calib, frames, steps, hop, rate, bits, target,
                                     Path(folder) / name)
            out[name] = dict(part, share=share)
    return {"per_second": sum(p["per_second"] * p["share"] for p in out.values()),
            "parts": out, "target": target, "bits": bits}


def _counts(run, target: str) -> np.ndarray:
    if run.instructions is None:
        raise KilomlError(f"{target}: instruction counting unavailable ({run.note})")
    return np.asarray(run.instructions, dtype=np.float64)
