"""Freeze the deployment goldens: every case's float model, integer tensors, inputs, logits
and costs, as the deployment path computes them now.

    python tests/golden/freeze.py [--only TEXT] [--runs DIR]
    python tests/golden/freeze.py --costs cortex-m4,cortex-m3 [--only TEXT]

The goldens in ``tests/golden/cases`` were frozen from the FastGRNN-shaped path that came
before the integer graph, and ``test_goldens.py`` checks that the graph reproduces them. Run
this only when an intended change alters the integers or the costs, and say why in the commit;
``--costs`` measures only the flash, stack and instructions again from each case's stored
integers and inputs (the logits must not change), which needs no runs.
Each case writes ``tests/golden/cases/<case>/``:

* ``golden.npz``: the float model (``float_<state dict key>``), the quantized tensors
  (``tensor_<name>`` in the old path's names, at their stored width), the int16 inputs (the
  first test inputs plus four saturating ones) and the int32 logits of the simulator and C;
* ``golden.json``: the run's config, Q-formats, tensor formats, calibration ranges, storage and
  per target (host, cortex-m4, cortex-m3) the flash and stack bytes and the instructions per
  inference (mean, min, max over the stored inputs).

Synthetic cases are the models the deployment tests and ``benchmarks/cortex_m_cost.py`` build;
trained cases are the README's runs (``--runs`` holds ``demo`` and ``kws-h64``, made by
``make demo`` and the README's speech command), calibrated as ``kiloml export`` does.
"""

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from kiloml import runs  # noqa: E402
from kiloml.deploy.codegen import c_sources, generate_model  # noqa: E402
from kiloml.deploy.export import write_sources  # noqa: E402
from kiloml.deploy.targets import TARGETS, Build, flash_bytes, matrix_kernels  # noqa: E402
from kiloml.deploy.verify import run_model  # noqa: E402
from kiloml.ir import calibrate, lower_model, quantize_graph, quantize_input  # noqa: E402
from kiloml.ir.simulate import simulate_values  # noqa: E402
from kiloml.nn.classifier import stack_frames  # noqa: E402
from tests.golden.cases import CASES, calibration_data, extreme_inputs  # noqa: E402
from tests.golden.test_goldens import CORTEX_M_CASES, TENSORS, golden_graph  # noqa: E402

STORED_TEST_INPUTS = 32
DTYPES = {8: np.int8, 16: np.int16, 32: np.int32}


def measure_costs(name: str, graph, inputs: np.ndarray, logits: np.ndarray, work: Path,
                  targets: tuple[str, ...] = ("host", "cortex-m4", "cortex-m3")):
    """The generated model of ``graph`` and per target its flash and stack bytes (emulated
    targets: also the measured stack and the instructions per inference, mean and min-max),
    every output checked against ``logits``."""
    generated = generate_model(graph, f"golden {name}")
    files = write_sources(generated, work / "src")
    sources = [work / "src" / "model.c", *(work / "src" / f for f in c_sources(files))]
    costs = {}
    for target in targets:
        build = Build(TARGETS[target], sources, [work / "src"], work / target).compile()
        _, got, run = run_model(build, inputs, graph.meta["num_classes"],
                                count_instructions=TARGETS[target].emulated)
        if not np.array_equal(got, logits):
            raise SystemExit(f"{name}: {target} differs from the simulator")
        stack = build.stack_bytes("kiloml_predict", matrix_kernels(work / "src" / "model.c"))
        costs[target] = {"flash_bytes": flash_bytes(build), "stack_bytes": stack}
        if run.instructions:
            costs[target].update(stack_bytes_measured=run.stack_bytes_measured,
                                 instructions_per_inference=float(np.mean(run.instructions)),
                                 instructions_min_max=[min(run.instructions),
                                                       max(run.instructions)])
    return generated, costs


def record_costs(name: str, targets: tuple[str, ...], work: Path) -> None:
    """Measure again the costs of the frozen case ``name`` on ``targets`` from its stored
    integers (the C must still give its logits) and write them into its golden.json."""
    path = HERE / "cases" / name / "golden.json"
    info = json.loads(path.read_text())
    arrays = np.load(HERE / "cases" / name / "golden.npz")
    _, costs = measure_costs(name, golden_graph(name), arrays["inputs"], arrays["logits"],
                             work, targets)
    for target, measured in costs.items():
        before = info["targets"][target].get("instructions_per_inference")
        info["targets"][target] = measured
        after = measured.get("instructions_per_inference")
        if before is not None:
            print(f"{name} {target}: {before:,.0f} -> {after:,.0f} instructions, "
                  f"{measured['flash_bytes']:,} B flash")
    path.write_text(json.dumps(info, indent=1) + "\n")


def freeze(name: str, case: dict, runs_dir: Path, work: Path) -> None:
    out = HERE / "cases" / name
    run_dir, X_calib, X_test, _ = calibration_data(case, runs_dir, work)
    config, model = runs.load_run(run_dir)
    graph = lower_model(model, X_calib.shape[1])
    ranges = calibrate(graph, stack_frames(X_calib.astype(np.float64),
                                           graph.meta["frame_stack"]))
    graph = quantize_graph(graph, ranges, case["bits"])
    steps, features = graph.values["x"].shape
    inputs = np.concatenate([quantize_input(graph, X_test)[:STORED_TEST_INPUTS],
                             extreme_inputs(steps, features)])
    logits = simulate_values(graph, inputs)["logits"]
    generated, targets = measure_costs(name, graph, inputs, logits, work)
    rnn = next(n for n in graph.nodes if n.name == "rnn")
    old_names = {("rnn", n): n for n in rnn.q}
    old_names.update({where: old for old, where in TENSORS.items()
                      if where[0] != "rnn" or where[1] not in ("coef_a", "coef_b")})
    cell = rnn.attrs["cell"]
    old_names[("rnn", "coef_a")] = "sigmoid_zeta" if cell == "fastgrnn" else "sigmoid_alpha"
    old_names[("rnn", "coef_b")] = "sigmoid_nu" if cell == "fastgrnn" else "sigmoid_beta"
    tensors = {old_names[(node.name, key)]: t for node in graph.nodes for key, t in node.q.items()}
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    state = {f"float_{k}": v.detach().numpy() for k, v in model.state_dict().items()}
    np.savez_compressed(out / "golden.npz", inputs=inputs.astype(np.int16),
                        logits=logits.astype(np.int32), **state,
                        **{f"tensor_{n}": t.values.astype(DTYPES[t.bits])
                           for n, t in tensors.items()})
    formats = {"input": graph.values["x"].frac_bits, "logits": graph.values["logits"].frac_bits,
               **{k.removeprefix("format_"): v for k, v in rnn.consts.items()
                  if k.startswith("format_") and k != "format_input"}}
    old_ranges = {("input" if k == "x" else k.removeprefix("rnn.")): v for k, v in ranges.items()
                  if k in ("x", "logits") or k.startswith("rnn.")}
    golden = {
        "case": case,
        "model": {"kind": config["model"]["kind"], "steps": steps,
                  "bits": case["bits"], "frame_stack": graph.meta["frame_stack"]},
        "formats": formats,
        "tensors": {n: {"frac_bits": t.frac_bits, "bits": t.bits} for n, t in tensors.items()},
        "ranges": old_ranges,
        "weight_flash_bytes": generated.weight_flash_bytes,
        "scratch_bytes": generated.scratch_bytes,
        "macs_per_inference": generated.macs,
        "storage": generated.storage,
        "inputs": {"test": min(STORED_TEST_INPUTS, len(X_test)), "extreme": 4},
        "targets": targets,
        "config": {"model": config["model"], "data": config.get("data", {})},
    }
    (out / "golden.json").write_text(json.dumps(golden, indent=1) + "\n")
    print(f"{name}: {generated.weight_flash_bytes} B weights, "
          f"{targets['cortex-m4']['instructions_per_inference']:,.0f} instructions on M4")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=None, help="freeze only cases whose name has this")
    parser.add_argument("--runs", type=Path, default=Path("runs"),
                        help="directory holding the trained runs demo/ and kws-h64/")
    parser.add_argument("--costs", default=None, metavar="TARGETS",
                        help="only measure the costs again on these comma-separated targets "
                             "(e.g. cortex-m4,cortex-m3) from the stored integers, for a C change "
                             "that keeps every output (no runs needed)")
    args = parser.parse_args()
    for name, case in CASES.items():
        if args.only and args.only not in name:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            if args.costs:
                targets = tuple(t for t in args.costs.split(",")
                                if t == "host" or name in CORTEX_M_CASES)
                record_costs(name, targets, Path(tmp))
            else:
                freeze(name, case, args.runs, Path(tmp))


if __name__ == "__main__":
    main()
