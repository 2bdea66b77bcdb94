"""Raw PCM → label of an exported audio model: accuracy of the integer pipeline
(``simulate_pcm``: integer front end → Q-format conversion → integer model) on every test clip
of the run's dataset, against the float model on float features; the C ``kiloml_predict_pcm``
against the simulator on the host (every clip) and on Cortex-M4 under QEMU (a subset, with
instructions per 1 s clip).

    kiloml export runs/speech-commands-12 --bits 16 --out EXPORT
    python benchmarks/pcm_pipeline.py EXPORT --run runs/speech-commands-12 --cortex-m 48

Prints one table; ``--json FILE`` also writes the figures.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from kiloml.data import load_dataset
from kiloml.data.logmel import LogMelConfig
from kiloml.deploy.export import float_logits
from kiloml.deploy.pcm_clips import load_test_pcm
from kiloml.deploy.pcm_verify import pcm_build, run_pcm
from kiloml.ir import quantize_input, simulate
from kiloml.ir.pcm import pcm_input
from kiloml.ir.serialize import load_graph
from kiloml.ops.logmel import make_tables
from kiloml.runs import load_run, read_run_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export", type=Path, help="directory written by kiloml export")
    parser.add_argument("--run", type=Path, required=True, help="the exported run directory")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--cortex-m", type=int, default=0, metavar="N",
                        help="also run the first N clips on Cortex-M4 (QEMU)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    data = read_run_config(args.run)["data"]
    data_dir = args.data_dir or data.get("data_dir")
    q = load_graph(args.export / "quantized_model.npz")
    rate = json.loads((args.export / "export.json").read_text())["pcm"]["sample_rate"]
    tables = make_tables(LogMelConfig(rate))
    pcm, labels, _ = load_test_pcm(data["dataset"], data_dir)
    splits = load_dataset(data["dataset"], data_dir)
    assert np.array_equal(splits.test.y, labels), "PCM clips are not the test split's order"
    _, model = load_run(args.run)
    floats = float_logits(model, splits.test.x)
    feature_sim = simulate(q, quantize_input(q, splits.test.x))
    start = time.perf_counter()
    pcm_inputs = np.stack([pcm_input(q, tables, x) for x in pcm])
    pcm_sim = simulate(q, pcm_inputs).astype(np.int64)
    seconds = time.perf_counter() - start
    lsb = np.abs(pcm_inputs.astype(np.int64) - quantize_input(q, splits.test.x))
    figures = {
        "clips": len(pcm), "sample_rate": rate, "input_frac_bits": q.values["x"].frac_bits,
        "float_accuracy": float(np.mean(floats.argmax(1) == labels)),
        "feature_simulator_accuracy": float(np.mean(feature_sim.argmax(1) == labels)),
        "pcm_simulator_accuracy": float(np.mean(pcm_sim.argmax(1) == labels)),
        "pcm_vs_float_label_agreement": float(np.mean(pcm_sim.argmax(1) == floats.argmax(1))),
        "model_input_lsb_diff_max": int(lsb.max()),
        "model_input_lsb_diff_mean": float(lsb.mean()),
        "simulator_seconds": seconds,
    }
    with tempfile.TemporaryDirectory() as tmp:
        classes = q.meta["num_classes"]
        host = run_pcm(pcm_build(args.export, "host", Path(tmp) / "host"), pcm, classes)
        classes, logits = host["classes"], host["logits"]
        figures["host_exact_clips"] = int(np.all(logits == pcm_sim, axis=1).sum())
        figures["host_labels_equal"] = bool(np.array_equal(classes, pcm_sim.argmax(1)))
        if args.cortex_m:
            subset = pcm[:args.cortex_m]
            m4 = pcm_build(args.export, "cortex-m4", Path(tmp) / "m4")
            total = run_pcm(m4, subset, q.meta["num_classes"], count_from="kiloml_predict_pcm")
            model_only = run_pcm(m4, subset, q.meta["num_classes"], count_from="kiloml_predict")
            figures["cortex_m4_clips"] = len(subset)
            figures["cortex_m4_exact_clips"] = int(np.all(
                total["logits"] == pcm_sim[:len(subset)], axis=1).sum())
            figures["cortex_m4_instructions_per_clip"] = float(np.mean(total["instructions"]))
            figures["cortex_m4_instructions_min_max"] = [min(total["instructions"]),
                                                         max(total["instructions"])]
            figures["cortex_m4_model_instructions_per_clip"] = float(
                np.mean(model_only["instructions"]))
            figures["cortex_m4_stack_bytes"] = total["stack_bytes"]
            figures["cortex_m4_stack_bytes_measured"] = total["stack_bytes_measured"]
    width = max(map(len, figures))
    for key, value in figures.items():
        text = f"{value:.4f}" if isinstance(value, float) and value < 100 else str(value)
        print(f"{key:<{width}}  {text}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
