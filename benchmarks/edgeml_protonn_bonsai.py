"""EdgeML 0.3.0's own PyTorch ProtoNN and Bonsai trainers beside kiloml's, on the same data, in
one run: whether EdgeML's trainers run, and the test accuracy and model size each reaches with
the same model sizes, sparsity budgets, epochs and batches.

    KILOML_DATA=../shared/data .venv-bench/bin/python benchmarks/edgeml_protonn_bonsai.py
    KILOML_DATA=../shared/data python benchmarks/edgeml_protonn_bonsai.py --quick  # smoke run

EdgeML (``edgeml-pytorch==0.3.0``, in the benchmarks' environment: ``make bench-env``) runs with
its example scripts' defaults (``examples/pytorch/ProtoNN`` and ``examples/pytorch/Bonsai``,
listed in :data:`EXAMPLE`, their epochs included unless ``--epochs-protonn/--epochs-bonsai``
say otherwise); when it cannot be imported, its rows are skipped with the reason and kiloml's
still run. Both trainers get kiloml's splits (55,000 train / 5,000 validation / 10,000 test)
and features (pixels / 255, centred per pixel and divided by one common standard deviation,
the normalisation kiloml's models apply). EdgeML's Bonsai trainer keeps the epoch that is best on
the data it is given as "test": it is given the validation split, and the test split is only
used once, on the model kept. EdgeML's ProtoNN trainer keeps its last epoch.

Model size: "EdgeML's rule" (what EdgeML's trainers report: 4 B per value of a dense matrix,
8 B per nonzero of a matrix with sparsity below 0.5) on the actual nonzeros, for both trainers;
and, for kiloml's model, the int8 integer graph's stored bytes (weights, indices, scales), with
the int8 accuracy of the simulator (which the C equals bit for bit).

Seeds: ``--seeds 0 1 2`` runs every row once per seed (seeding numpy and torch before each
trainer). Each seed's results go to ``OUT/edgeml_protonn_bonsai_seed{N}.json`` (default OUT
``docs/benchmarks``); a run replaces only the rows and trainers it ran in that file (so
``--no-edgeml --models bonsai`` re-measures kiloml's Bonsai rows and keeps EdgeML's), and every
result records when it was measured. ``OUT/edgeml_protonn_bonsai.md`` gets the mean ± standard
deviation (sample, n - 1) over all the seed files in OUT, then each seed's table; ``--report``
rewrites it from the saved files.
"""

import argparse
import contextlib
import io
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from kiloml.data import load_dataset
from kiloml.ir import quantize_input, quantize_model, simulate
from kiloml.models import get_family
from kiloml.nn.protonn import common_std
from kiloml.train.fit import fit, fit_normalization
from kiloml.train.trainer import TrainConfig
from machine_info import describe
from seed_results import mean_std, seed_files

#: EdgeML's example scripts' defaults (``helpermethods.py`` of each): ProtoNN dense with the
#: median heuristic for gamma and cross-entropy; Bonsai with Z 20 % kept, and W, V, theta dense
#: for two classes and 20 % kept otherwise, the multi-class hinge loss, batches of
#: max(100, sqrt(N)).
EXAMPLE = {
    "protonn": dict(projection_dim=10, prototypes=20, epochs=100, batch_size=32, lr=0.001,
                    reg=(0.0, 0.0, 0.0), sparsity=(1.0, 1.0, 1.0)),
    "bonsai": dict(projection_dim=10, depth=2, sigma=1.0, epochs=42, lr=0.01,
                   reg=(1e-4, 1e-4, 1e-4, 1e-5), sparsity_z=0.2),
}
#: Epochs run by default: the examples' own (all rows: 20 minutes of CPU on one thread).
EPOCHS = {"protonn": EXAMPLE["protonn"]["epochs"], "bonsai": EXAMPLE["bonsai"]["epochs"]}
DATASETS = ("mnist-2", "mnist")
#: ``--datasets`` may also name fashion-mnist (not run by default).
CHOICES = (*DATASETS, "fashion-mnist")
#: ``--quick``: training images, validation and test images, epochs (3: dense, IHT, sparse)
QUICK = (2000, 600, 3)


def bonsai_sparsity(num_classes: int) -> dict[str, float]:
    """The Bonsai example's kept fractions: Z 0.2; W, V, theta 1.0 for two classes, else 0.2."""
    rest = 1.0 if num_classes == 2 else 0.2
    return {"Z": EXAMPLE["bonsai"]["sparsity_z"], "W": rest, "V": rest, "T": rest}


def bonsai_batch(train_size: int) -> int:
    """The Bonsai example's batch size: max(100, ceil(sqrt(N)))."""
    return max(100, math.ceil(math.sqrt(train_size)))


def edgeml_rule_bytes(matrices: dict[str, np.ndarray], kept: dict[str, float]) -> int:
    """EdgeML's size rule on the actual nonzeros: 8 B per nonzero of a matrix kept below 0.5,
    else 4 B per value."""
    return int(sum(np.count_nonzero(m) * 8 if kept[name] < 0.5 else m.size * 4
                   for name, m in matrices.items()))


def hard_threshold(a: torch.Tensor, s: float) -> torch.Tensor:
    """``edgeml_pytorch.utils.hardThreshold`` with ``np.percentile(method=...)`` for
    ``interpolation=...``, which numpy 2.4 no longer accepts."""
    flat = a.data.cpu().detach().numpy().ravel()
    if len(flat) > 0:
        th = np.percentile(np.abs(flat), (1 - s) * 100.0, method="higher")
        flat[np.abs(flat) < th] = 0.0
    return torch.tensor(flat.reshape(a.shape), requires_grad=True)


def median_heuristic(x: np.ndarray, projection_dim: int, prototypes: int):
    """EdgeML's ProtoNN example calls ``utils.medianHeuristic``, which edgeml-pytorch 0.3.0
    does not have; this is the function of EdgeML's TensorFlow package (``edgeml_tf.utils``):
    random Gaussian ``W`` ``[F, d]``, k-means (scipy's ``kmeans2``) of ``xW`` for ``B``
    ``[d, m]``, ``gamma = 1 / (2.5 * median ||xW - b_j||)``."""
    import scipy.cluster.vq
    import scipy.spatial.distance

    w = np.random.normal(size=[x.shape[1], projection_dim])
    xw = x @ w
    b, _ = scipy.cluster.vq.kmeans2(xw, prototypes)
    gamma = 1 / (2.5 * np.median(scipy.spatial.distance.cdist(xw, b).reshape(-1)))
    return np.float32(gamma), w.astype(np.float32), b.T.astype(np.float32)


def import_edgeml() -> tuple[dict | None, str, list[str]]:
    """EdgeML's modules (or None), the reason when not importable, and the patches applied."""
    try:
        import edgeml_pytorch.utils as utils

        utils.findCUDA = lambda: None  # no CUDA probing (as benchmarks/train_speed.py)
        from edgeml_pytorch.graph.bonsai import Bonsai
        from edgeml_pytorch.graph.protoNN import ProtoNN
        from edgeml_pytorch.trainer.bonsaiTrainer import BonsaiTrainer
        from edgeml_pytorch.trainer.protoNNTrainer import ProtoNNTrainer
    except ImportError as e:
        return None, f"{type(e).__name__}: {e}", []
    patches = []
    try:
        np.percentile(np.zeros(2), 50, interpolation="higher")
    except TypeError:
        utils.hardThreshold = hard_threshold
        patches.append("utils.hardThreshold calls np.percentile(interpolation='higher'), which "
                       f"numpy {np.__version__} rejects (TypeError): replaced by the same "
                       "function with method='higher'")
    if not hasattr(utils, "medianHeuristic"):
        patches.append("the ProtoNN example calls utils.medianHeuristic, which edgeml-pytorch "
                       "0.3.0 lacks (AttributeError): EdgeML's TensorFlow version supplied")
    modules = dict(Bonsai=Bonsai, ProtoNN=ProtoNN, BonsaiTrainer=BonsaiTrainer,
                   ProtoNNTrainer=ProtoNNTrainer)
    return modules, "", patches


def features(data) -> dict[str, np.ndarray]:
    """kiloml's splits as ``[N, F]`` float32, normalised as kiloml's models normalise them."""
    mean, std = fit_normalization(data.train.x)
    scale = common_std(torch.from_numpy(std)).numpy()
    return {name: ((getattr(data, name).x.reshape(len(getattr(data, name).x), -1) - mean)
                   / scale).astype(np.float32) for name in ("train", "val", "test")}


def one_hot(y: np.ndarray, classes: int) -> np.ndarray:
    return np.eye(classes, dtype=np.float32)[y]


def edgeml_protonn(edgeml: dict, x: dict, data, epochs: int, seed: int, log: io.StringIO
                   ) -> dict:
    """EdgeML's ProtoNN example's steps: median heuristic, ``ProtoNNTrainer`` with
    cross-entropy, the last epoch kept."""
    ex = EXAMPLE["protonn"]
    classes = data.num_classes
    np.random.seed(seed)
    torch.manual_seed(seed)
    started, cpu = time.perf_counter(), time.process_time()
    gamma, w, b = median_heuristic(x["train"], ex["projection_dim"], ex["prototypes"])
    model = edgeml["ProtoNN"](x["train"].shape[1], ex["projection_dim"], ex["prototypes"],
                              classes, gamma, W=w, B=b)
    trainer = edgeml["ProtoNNTrainer"](model, *ex["reg"], *ex["sparsity"], ex["lr"],
                                       lossType="xentropy")
    trainer.train(ex["batch_size"], epochs, x["train"], x["val"],
                  one_hot(data.train.y, classes), one_hot(data.val.y, classes),
                  printStep=200, valStep=3)  # the example's defaults
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    with torch.no_grad():
        pred = model(torch.from_numpy(x["test"])).argmax(1).numpy()
    matrices = {n: p.detach().numpy() for n, p in
                zip("WBZ", (model.W, model.B, model.Z), strict=True)}
    kept = dict(zip("WBZ", ex["sparsity"], strict=True))
    print(log.getvalue().strip().splitlines()[-1], file=sys.stderr)
    return {"test_accuracy": float(np.mean(pred == data.test.y)),
            "nonzeros": int(sum(np.count_nonzero(m) for m in matrices.values())),
            "edgeml_rule_bytes": edgeml_rule_bytes(matrices, kept), "epochs": epochs,
            "batch_size": ex["batch_size"], "kept": kept, "epoch_kept": epochs,
            "wall_seconds": seconds, "cpu_seconds": cpu}


def edgeml_bonsai(edgeml: dict, x: dict, data, epochs: int, seed: int, log: io.StringIO
                  ) -> dict:
    """EdgeML's Bonsai example's steps: a constant 1 appended to every input (its bias),
    ``BonsaiTrainer`` with the multi-class hinge loss, the epoch best on the validation split
    (given as its "test" data) kept."""
    ex = EXAMPLE["bonsai"]
    classes = data.num_classes
    kept = bonsai_sparsity(classes)
    batch = bonsai_batch(len(x["train"]))

    def with_bias(a):
        return torch.from_numpy(np.hstack([a, np.ones((len(a), 1), np.float32)]))

    def labels(y):
        return torch.from_numpy(y.reshape(-1, 1).astype(np.float32) if classes == 2
                                else one_hot(y, classes))

    np.random.seed(seed)
    torch.manual_seed(seed)
    xtrain, xval, xtest = (with_bias(x[s]) for s in ("train", "val", "test"))
    started, cpu = time.perf_counter(), time.process_time()
    model = edgeml["Bonsai"](classes, xtrain.shape[1], ex["projection_dim"], ex["depth"],
                             ex["sigma"])
    rw, rv, rt, rz = ex["reg"]
    with tempfile.TemporaryDirectory() as folder:
        trainer = edgeml["BonsaiTrainer"](model, rw, rt, rv, rz, kept["W"], kept["T"],
                                          kept["V"], kept["Z"], ex["lr"], True,
                                          f"{folder}/log.txt")
        trainer.train(batch, epochs, xtrain, xval, labels(data.train.y), labels(data.val.y),
                      folder, folder)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        text = Path(f"{folder}/log.txt").read_text()
        log.write(text)
        saved = Path(folder, "W.npy").is_file()
        params = {n: np.load(f"{folder}/{n}.npy") for n in "WVTZ"} if saved else {
            n: getattr(model, n).detach().numpy() for n in "WVTZ"}
    best = model.__class__(classes, xtrain.shape[1], ex["projection_dim"], ex["depth"],
                           ex["sigma"], **params)
    with torch.no_grad():
        logits, _ = best(xtest, 1e9)
    pred = ((logits[:, 0] > 0).long() if classes == 2 else logits.argmax(1)).numpy()
    epoch = [line for line in text.splitlines() if "Maximum Test accuracy" in line
             or "Epoch:" in line]
    print(text.strip().splitlines()[-1], file=sys.stderr)
    return {"test_accuracy": float(np.mean(pred == data.test.y)),
            "nonzeros": int(sum(np.count_nonzero(m) for m in params.values())),
            "edgeml_rule_bytes": edgeml_rule_bytes(params, kept), "epochs": epochs,
            "batch_size": batch, "kept": kept, "wall_seconds": seconds, "cpu_seconds": cpu,
            "epoch_kept": int(epoch[-1].rsplit("Epoch:", 1)[1].split()[0]) if saved and epoch
            else epochs}


def kiloml_run(kind: str, data, edgeml_like: dict, epochs: int, seed: int) -> dict:
    """kiloml's trainer with the same model size, kept fractions, epochs and batch size (its own
    learning rate, schedule, initialisation and loss; Bonsai's projection ``Z x / d`` with
    ``Z`` from N(0, 1) is EdgeML's)."""
    if kind == "protonn":
        ex = EXAMPLE["protonn"]
        settings = dict(projection_dim=ex["projection_dim"], prototypes=ex["prototypes"])
        keep = dict(zip(("keep_w", "keep_u", "keep_head"), ex["sparsity"], strict=True))
        kept = dict(zip("WBZ", ex["sparsity"], strict=True))
    else:
        ex = EXAMPLE["bonsai"]
        settings = dict(projection_dim=ex["projection_dim"], depth=ex["depth"],
                        sigma=ex["sigma"])
        s = bonsai_sparsity(data.num_classes)
        keep = dict(keep_w=s["Z"], keep_u=s["T"], keep_head=s["W"])
        kept = {"Z": s["Z"], "theta": s["T"], "W": s["W"], "V": s["V"]}
    config = get_family(kind).config(kind=kind, input_size=data.num_features,
                                     num_classes=data.num_classes, **settings).validate()
    train = TrainConfig(epochs=epochs, batch_size=edgeml_like["batch_size"], seed=seed,
                        **keep).validate()
    started, cpu = time.perf_counter(), time.process_time()
    outcome = fit(data, config, train)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    model = outcome.model
    matrices = {n: getattr(model, n).detach().numpy() for n in kept}
    graph = quantize_model(model, data.train.x[:2000], 8)
    integer = simulate(graph, quantize_input(graph, data.test.x)).argmax(1)
    return {"test_accuracy": outcome.metrics["test_accuracy"],
            "val_accuracy": outcome.result.best_val_accuracy,
            "int8_accuracy": float(np.mean(integer == data.test.y)),
            "int8_bytes": graph.flash_bytes(),
            "nonzeros": int(sum(np.count_nonzero(m) for m in matrices.values())),
            "edgeml_rule_bytes": edgeml_rule_bytes(matrices, kept), "epochs": epochs,
            "batch_size": train.batch_size, "kept": kept, "wall_seconds": seconds,
            "cpu_seconds": cpu,
            "epoch_kept": outcome.result.best_epoch + 1}


def table(results: dict) -> str:
    rows = ["| model | dataset | trainer | test acc. | nonzeros | bytes, EdgeML's rule (float) "
            "| int8 bytes (acc.) | epochs (kept) | batch | time vs kiloml: wall (CPU) |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for key, entry in results["rows"].items():
        kind, dataset = key.split(" ", 1)
        ours = entry.get("kiloml")
        for trainer in ("EdgeML 0.3.0", "kiloml"):
            r = entry.get(trainer)
            if r is None:
                continue
            if "error" in r:
                rows.append(f"| {kind} | {dataset} | {trainer} | failed: {r['error']} "
                            "| | | | | | |")
                continue
            int8 = (f"{r['int8_bytes']:,} ({100 * r['int8_accuracy']:.2f} %)"
                    if "int8_bytes" in r else "-")
            theirs = entry.get("EdgeML 0.3.0", {})
            same_run = ours and theirs.get("measured") == ours.get("measured")
            ratio = (f"{r['wall_seconds'] / ours['wall_seconds']:.2f}x "
                     f"({r['cpu_seconds'] / ours['cpu_seconds']:.2f}x)"
                     if same_run and "cpu_seconds" in theirs else "-")  # one run's times only
            rows.append(f"| {kind} | {dataset} | {trainer} | {100 * r['test_accuracy']:.2f} % "
                        f"| {r['nonzeros']:,} | {r['edgeml_rule_bytes']:,} | {int8} "
                        f"| {r['epochs']} ({r['epoch_kept']}) | {r['batch_size']} | {ratio} |")
    notes = [f"EdgeML: {results['edgeml']}"] + [f"patch: {p}" for p in results["patches"]]
    return "\n".join(rows) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"


def summary(runs: dict[int, dict]) -> str:
    """Mean ± std over the seeds of every row and trainer that has results, then each seed's
    table."""
    rows = ["| model | dataset | trainer | seeds | test acc. | int8 acc. | bytes, EdgeML's rule "
            "(mean) | int8 bytes (mean) |", "|---|---|---|---|---|---|---|---|"]
    keys = list(dict.fromkeys(key for r in runs.values() for key in r["rows"]))
    for key in keys:
        kind, dataset = key.split(" ", 1)
        for trainer in ("EdgeML 0.3.0", "kiloml"):
            done = {seed: r["rows"][key][trainer] for seed, r in runs.items()
                    if key in r["rows"] and "test_accuracy" in r["rows"][key].get(trainer, {})}
            if not done:
                continue
            got = list(done.values())
            int8 = (mean_std([g["int8_accuracy"] for g in got]) if "int8_accuracy" in got[0]
                    else "-")
            size = (f"{statistics.fmean(g['int8_bytes'] for g in got):,.0f}"
                    if "int8_bytes" in got[0] else "-")
            rows.append(f"| {kind} | {dataset} | {trainer} | {', '.join(map(str, done))} "
                        f"| {mean_std([g['test_accuracy'] for g in got])} | {int8} "
                        f"| {statistics.fmean(g['edgeml_rule_bytes'] for g in got):,.0f} "
                        f"| {size} |")
    parts = ["\n".join(rows)] + [f"### Seed {seed}\n\n{table(r)}" for seed, r in runs.items()]
    return "\n\n".join(parts) + "\n"


def merge(saved: dict | None, results: dict) -> dict:
    """``results`` over ``saved`` (one seed): the rows and trainers just run replace theirs."""
    if saved is None:
        return results
    rows = saved["rows"]
    for key, entry in results["rows"].items():
        rows.setdefault(key, {}).update(entry)
    if results["edgeml"] != "skipped (not run (--no-edgeml))":
        saved["edgeml"], saved["patches"] = results["edgeml"], results["patches"]
    saved.update({k: results[k] for k in ("machine", "torch", "numpy")})
    return saved


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=CHOICES)
    parser.add_argument("--models", nargs="+", default=["protonn", "bonsai"],
                        choices=["protonn", "bonsai"])
    parser.add_argument("--epochs-protonn", type=int, default=EPOCHS["protonn"])
    parser.add_argument("--epochs-bonsai", type=int, default=EPOCHS["bonsai"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="run every row once per seed (default: 0)")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks"))
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: {QUICK[0]} training images, {QUICK[1]} validation "
                        f"and test images, {QUICK[2]} epochs")
    parser.add_argument("--no-edgeml", action="store_true", help="run kiloml's trainer only")
    parser.add_argument("--report", action="store_true",
                        help="only rewrite the table from the results already saved")
    args = parser.parse_args()
    stem = "edgeml_protonn_bonsai_quick" if args.quick else "edgeml_protonn_bonsai"
    if args.report:
        return write_summary(args.out, stem)
    torch.set_num_threads(1)  # both trainers alike; threads of a shared machine only wait
    edgeml, reason, patches = (None, "not run (--no-edgeml)", []) if args.no_edgeml \
        else import_edgeml()
    if edgeml is None:
        print(f"EdgeML skipped: edgeml-pytorch is not importable here ({reason}); it is in the "
              "benchmarks' environment (make bench-env)", file=sys.stderr)
    for seed in args.seeds:
        results = run_seed(args, edgeml, reason, patches, seed)
        path = args.out / f"{stem}_seed{seed}.json"
        saved = json.loads(path.read_text()) if path.is_file() else None
        args.out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(merge(saved, results), indent=1))
    return write_summary(args.out, stem)


def write_summary(out: Path, stem: str) -> int:
    """Rewrite ``OUT/STEM.md`` from the seed files; print it."""
    runs = seed_files(out, stem)
    if not runs:
        print(f"no results saved in {out} ({stem}_seed*.json); run without --report first",
              file=sys.stderr)
        return 1
    report = summary(runs)
    (out / f"{stem}.md").write_text(report)
    print(report)
    return 0


def run_seed(args: argparse.Namespace, edgeml: dict | None, reason: str, patches: list[str],
             seed: int) -> dict:
    """Every requested row with ``seed``: ``{"rows": {"KIND DATASET": {trainer: result}}}``
    and what ran."""
    epochs = {"protonn": args.epochs_protonn, "bonsai": args.epochs_bonsai}
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results = {"quick": args.quick, "seed": seed, "machine": describe(),
               "torch": torch.__version__, "numpy": np.__version__,
               "edgeml": "edgeml-pytorch 0.3.0" if edgeml else f"skipped ({reason})",
               "patches": patches, "rows": {}}
    for dataset in args.datasets:
        data = load_dataset(dataset)
        if args.quick:
            for split, size in ((data.train, QUICK[0]), (data.val, QUICK[1]),
                                (data.test, QUICK[1])):
                split.x, split.y = split.x[:size], split.y[:size]
        x = features(data)
        for kind in args.models:
            n = QUICK[2] if args.quick else epochs[kind]
            entry = results["rows"].setdefault(f"{kind} {dataset}", {})
            batch = {"batch_size": EXAMPLE["protonn"]["batch_size"] if kind == "protonn"
                     else bonsai_batch(len(data.train.x))}
            if edgeml is not None:
                log = io.StringIO()
                try:
                    with contextlib.redirect_stdout(log):
                        run = edgeml_protonn if kind == "protonn" else edgeml_bonsai
                        entry["EdgeML 0.3.0"] = run(edgeml, x, data, n, seed, log)
                except Exception as e:  # noqa: BLE001 - the failure is the finding to report
                    entry["EdgeML 0.3.0"] = {"error": f"{type(e).__name__}: {e}"}
                entry["EdgeML 0.3.0"]["measured"] = when
                print(seed, kind, dataset, "EdgeML", entry["EdgeML 0.3.0"], flush=True)
            entry["kiloml"] = {**kiloml_run(kind, data, batch, n, seed), "measured": when}
            print(seed, kind, dataset, "kiloml", entry["kiloml"], flush=True)
    return results


if __name__ == "__main__":
    sys.exit(main())
