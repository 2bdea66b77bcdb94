"""Instructions per pushed frame of a ShaRNN export's streaming C API against one
``kiloml_predict`` per window, on an emulated Cortex-M.

    python benchmarks/stream_instructions.py runs/sw-sharnn-0/c8 [--target cortex-m4] [--windows 4]

The stream is the export's first ``--windows`` test windows one after another. Every push is
counted (``kiloml_stream_push`` entry to its return) and every decision checked against the
integer spec (:class:`kiloml.ir.stream.ShaRNNStream`); ``kiloml_predict`` is counted on the
same windows. Prints the mean instructions per pushed frame, per push that reads a brick and
decides, per other push, and per ``kiloml_predict`` window, and the ratios that matter in a
stream that decides every brick: predict per brick of frames against pushes per brick.
"""

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from kiloml.deploy.codegen import c_sources
from kiloml.deploy.export import EXPORT_FILE, QUANTIZED_FILE, TEST_INPUTS_FILE
from kiloml.deploy.stream import stream_sizes
from kiloml.deploy.stream_verify import run_stream, simulate_stream
from kiloml.deploy.targets import TARGETS, Build
from kiloml.deploy.verify import run_model
from kiloml.ir.serialize import load_graph


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export", type=Path, help="directory written by kiloml export (ShaRNN)")
    parser.add_argument("--target", default="cortex-m4", choices=["cortex-m4", "cortex-m3"])
    parser.add_argument("--windows", type=int, default=4, help="test windows in the stream")
    args = parser.parse_args()
    export = args.export.resolve()
    graph = load_graph(export / QUANTIZED_FILE)
    with np.load(export / TEST_INPUTS_FILE) as data:
        windows = data["inputs"][:args.windows]
    stream = windows.reshape(-1, windows.shape[-1])
    info = json.loads((export / EXPORT_FILE).read_text())
    sources = [export / "model.c", *(export / f for f in c_sources(info["files"]))]
    width = graph.values[graph.output].count
    with tempfile.TemporaryDirectory() as folder:
        build = Build(TARGETS[args.target], sources, [export], Path(folder)).compile()
        decisions, run = run_stream(build, [stream], width, count_instructions=True)
        _, _, window_run = run_model(build, windows, width, count_instructions=True)
    if decisions != simulate_stream(graph, [stream]):
        raise SystemExit("the C stream differs from the integer spec")
    if run.instructions is None or window_run.instructions is None:
        raise SystemExit(f"instruction counting unavailable: {run.note or window_run.note}")
    pushes = np.array(run.instructions, dtype=np.float64)
    deciding = np.zeros(len(pushes), dtype=bool)
    deciding[[t for _, t, _, _ in decisions]] = True
    brick = stream_sizes(graph)["brick"]
    reading = np.zeros(len(pushes), dtype=bool)
    reading[brick - 1::brick] = True
    predict = float(np.mean(window_run.instructions))
    per_brick = pushes[deciding].mean() + pushes[~reading].mean() * (brick - 1)
    print(f"{args.target}, {len(pushes)} frames pushed, {len(decisions)} decisions, "
          f"brick {brick}")
    print(f"per pushed frame (mean over the stream) {pushes.mean():12,.0f}")
    print(f"per push that reads a brick and decides {pushes[deciding].mean():12,.0f}")
    print(f"per other push                          {pushes[~reading].mean():12,.0f}")
    print(f"per kiloml_predict window               {predict:12,.0f}")
    print(f"stream state {info['stream_state_bytes']:,} B (model.h), deepest stack of a push "
          f"{run.stack_bytes_measured} B (painted), of kiloml_predict "
          f"{window_run.stack_bytes_measured} B")
    print(f"one decision every {brick} frames: {per_brick:,.0f} by the stream against "
          f"{predict:,.0f} by kiloml_predict ({predict / per_brick:.1f}x fewer)")


if __name__ == "__main__":
    main()
