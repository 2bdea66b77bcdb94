"""``kiloml`` command line: train, eval, info, export, verify, datasets and demo (the main job:
train → export → verify)."""

import argparse
import json
import shutil
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from kiloml import __version__
from kiloml.deploy.commands import (
    add_export_arguments,
    add_verify_arguments,
    run_export,
    run_verify,
)
from kiloml.deploy.verify import TARGETS as VERIFY_TARGETS
from kiloml.errors import KilomlError
from kiloml.nn.nonlinearity import FUNCTIONS as NONLINEARITIES
from kiloml.train.budget import (
    MAX_BATCH,
    MIN_BATCH,
    MIN_EPOCHS,
    MIN_STEPS,
    SEQUENCES_PER_BATCH,
)
from kiloml.train.cross_validation import FOLDS, MIN_VALIDATION
from kiloml.train.recipes import IMU_STEPS, SERIES_STEPS

console = Console(highlight=False, soft_wrap=True)  # pipes and CI logs: one line per line
error_console = Console(stderr=True, highlight=False, soft_wrap=True)

#: Defaults that do not depend on the data. The training budget (epochs, batch size) comes from
#: the training-set size (``train.budget``); augmentation, readout, candidate nonlinearity and
#: frame stacking from the recipe for the kind of data (``train.recipes``); how the epoch is
#: chosen from the size of the validation split (``train.cross_validation``).
DEFAULTS = {
    "dataset": "smartwatch", "model": "fastgrnn", "hidden_size": 32, "w_rank": None,
    "u_rank": 8, "sparsity_w": 0.5, "sparsity_u": 0.5, "sparsity_head": 1.0, "lr": 1e-2,
    "seed": 0, "gate_nonlinearity": "sigmoid",
}
RECIPES = ("auto", "imu", "audio", "image", "series")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def _rank(text: str) -> int:
    """A rank, or ``full`` (returned as 0)."""
    return 0 if text == "full" else _positive_int(text)


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or a positive number, got {value}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1], got {value}")
    return value


def _per_recipe(name: str) -> str:
    """``imu 0.1, audio 0.1, ...``: a default per recipe, for ``--help``."""
    from kiloml.train.recipes import AUDIO, IMAGE, IMU, SERIES

    return ", ".join(f"{r.kind} {getattr(r, name):g}" for r in (IMU, AUDIO, IMAGE, SERIES))


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    d = DEFAULTS
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default=d["dataset"],
                   help="dataset name (see `kiloml datasets`), or your own data: a .npz with "
                        "X_train, y_train, X_test, y_test as [N, T, F] / [N], a UEA .ts pair "
                        "NAME_TRAIN.ts/NAME_TEST.ts (either file or NAME), or a folder of WAVs "
                        "with one sub-folder per label (default: %(default)s)")
    g.add_argument("--data-dir", type=Path, default=None,
                   help="where the dataset's files are (default: its standard location)")
    g.add_argument("--skip-bad-files", action="store_true",
                   help="skip unreadable files of a file-based dataset (reported with the reason) "
                        "instead of stopping at the first one")
    g.add_argument("--train-hop", type=_positive_int, default=None, metavar="SAMPLES",
                   help="smartwatch: samples between the starts of consecutive training windows "
                        "(default: 64, as for validation and test; 16 gives four times as many "
                        "training windows, and epochs take four times as long)")
    g.add_argument("--train-speeds", type=float, nargs="+", default=None, metavar="SPEED",
                   help="smartwatch: also cut training windows from the training recordings "
                        "replayed at these speeds (0.5-2; 1 is as recorded; the gyroscope "
                        "scales with the speed, the accelerometer's motion part with its "
                        "square), as if people exercised faster or slower; "
                        "e.g. 0.75 1 1.333 gives three times as many training windows")
    g = p.add_argument_group("model")
    g.add_argument("--model", default=d["model"], choices=["fastgrnn", "fastrnn", "gru", "lstm"],
                   help="recurrent cell (default: %(default)s)")
    g.add_argument("--hidden-size", type=_positive_int, default=d["hidden_size"],
                   help="hidden units (default: %(default)s)")
    g.add_argument("--w-rank", type=_rank, default=None,
                   help="FastGRNN/FastRNN: rank of the input matrix W = W2·W1, or 'full' "
                        f"(default: {d['w_rank'] or 'full'})")
    g.add_argument("--u-rank", type=_rank, default=None,
                   help="FastGRNN/FastRNN: rank of the recurrent matrix U = U2·U1, or 'full' "
                        f"(default: {d['u_rank'] or 'full'})")
    g.add_argument("--gate-nonlinearity", choices=NONLINEARITIES, default=None,
                   help=f"FastGRNN gate z (default: {d['gate_nonlinearity']})")
    g.add_argument("--update-nonlinearity", choices=NONLINEARITIES, default=None,
                   help="FastGRNN candidate state h~ / FastRNN update (default: from the "
                        "recipe: tanh for audio, else relu)")
    g.add_argument("--frame-stack", type=_positive_int, default=None,
                   help="feed K consecutive frames to each recurrent step (K times fewer, wider "
                        "steps; the sequence length must be a multiple of K; default: 1, or the "
                        f"smallest K that leaves at most {SERIES_STEPS} steps of series data "
                        f"({IMU_STEPS} of imu data), padding the front to a multiple of K)")
    g.add_argument("--readout", choices=["last", "mean"], default=None,
                   help="classify the last hidden state or the mean over time (default: from "
                        "the recipe: mean for FastGRNN/FastRNN on audio, else last)")
    g.add_argument("--bidirectional", action="store_true", help="run a second, reversed cell")
    g = p.add_argument_group("compression (FastGRNN/FastRNN)")
    g.add_argument("--sparsity-w", type=_fraction, default=None,
                   help="fraction of W's weights kept after hard thresholding, 1 = dense "
                        f"(default: {d['sparsity_w']})")
    g.add_argument("--sparsity-u", type=_fraction, default=None,
                   help=f"fraction of U's weights kept, 1 = dense (default: {d['sparsity_u']})")
    g.add_argument("--sparsity-head", type=_fraction, default=None,
                   help="fraction of the classifier head's weights kept, 1 = dense "
                        f"(default: {d['sparsity_head']})")
    g = p.add_argument_group("training")
    g.add_argument("--recipe", choices=RECIPES, default="auto",
                   help="defaults for a kind of data: imu (3-axis sensor channels: rotation, "
                        "gain, noise), audio (log-mel: mean readout, tanh), image (rows as "
                        "steps), series (anything else: noise; long series read in frames); "
                        "auto picks from what the data declares and prints why "
                        "(default: %(default)s)")
    g.add_argument("--epochs", type=_positive_int, default=None,
                   help="total epochs over all phases: 40%% dense, 20%% IHT, 40%% sparse "
                        f"retraining when sparse (default: the fewest that give at least "
                        f"{MIN_STEPS:,} optimizer steps, and at least {MIN_EPOCHS})")
    g.add_argument("--batch-size", type=_positive_int, default=None,
                   help=f"sequences per step (default: about a {SEQUENCES_PER_BATCH}th of the "
                        f"training sequences, a power of two from {MIN_BATCH} to {MAX_BATCH})")
    g.add_argument("--folds", type=_non_negative_int, default=None, metavar="K",
                   help="choose the epoch by K-fold cross-validation on the training and "
                        "validation sequences pooled, then train on all of them; 0 = choose on "
                        f"the validation split (default: {FOLDS} when the validation split "
                        f"holds fewer than {MIN_VALIDATION} sequences, else 0)")
    g.add_argument("--lr", type=float, default=d["lr"],
                   help="peak Adam learning rate, cosine-decayed once over all epochs "
                        "(default: %(default)s)")
    g.add_argument("--augment-scale", type=float, default=None,
                   help="training augmentation: per-sequence, per-feature gain with this standard "
                        f"deviation around 1; 0 = off (default: {_per_recipe('augment_scale')})")
    g.add_argument("--augment-noise", type=float, default=None,
                   help="training augmentation: Gaussian noise, in units of each feature's "
                        f"standard deviation (default: {_per_recipe('augment_noise')})")
    g.add_argument("--augment-rotation", type=float, default=None,
                   help="training augmentation: random 3-D rotation (degrees, standard "
                        "deviation) of the dataset's 3-axis sensor channels; ignored for data "
                        f"without them (default: {_per_recipe('augment_rotation')})")
    g.add_argument("--patience", type=_positive_int, default=None,
                   help="stop after this many epochs without validation improvement in the "
                        "final phase; not used with cross-validation (default: never)")
    g.add_argument("--seed", type=int, default=d["seed"], help="random seed (default: %(default)s)")
    g.add_argument("--threads", type=_positive_int, default=1,
                   help="CPU threads for PyTorch; results are reproducible for a given seed and "
                        "thread count, and one thread is fastest for kilobyte models "
                        "(default: %(default)s)")
    g = p.add_argument_group("output")
    g.add_argument("--out", type=Path, default=None,
                   help="run directory to write (default: runs/DATASET-MODEL)")
    g.add_argument("--resume", action="store_true",
                   help="continue the interrupted run in --out from its last checkpoint")
    g.add_argument("--overwrite", action="store_true",
                   help="replace an existing run in --out")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kiloml",
        description="Train, compress and deploy kilobyte-sized FastGRNN/FastRNN models for "
                    "microcontrollers.",
        epilog="Run `kiloml COMMAND --help` for the options of a command.")
    parser.add_argument("--version", action="version", version=f"kiloml {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("train", help="train a (compressed) model and write a run directory",
                       description="Train a model through the FastGRNN compression schedule "
                                   "(dense → iterative hard thresholding → sparse retraining) and "
                                   "write RUN/config.json, model.safetensors, metrics.json, "
                                   "checkpoint.safetensors, history.png and confusion.png.")
    add_train_arguments(p)
    p = sub.add_parser("demo", help="the main job: train the default compressed FastGRNN on the "
                                    "smartwatch data, export it as integer C and verify it",
                       description="Train the default compressed FastGRNN (same options as "
                                   "`kiloml train`), export it to RUN/c with int16 weights "
                                   "(`kiloml export`) and check the C against the integer "
                                   "simulator on the host and on emulated Cortex-M4/M3 "
                                   "(`kiloml verify`). Targets whose toolchain is missing are "
                                   "skipped with the command that installs it.")
    add_train_arguments(p)
    p.add_argument("--bits", type=int, choices=(8, 16), default=16,
                   help="weight width of the exported C (default: %(default)s)")
    p = sub.add_parser("export", help="quantize a run to integers and write freestanding C",
                       description="Post-training fixed-point quantization (power-of-two scales, "
                                   "int16 activations, int8/int16 weights) and C code generation: "
                                   "OUT/model.h, model.c, kiloml's C library, main.c, Makefile.")
    add_export_arguments(p)
    p = sub.add_parser("verify", help="check an export's C against the integer simulator, "
                                      "bit for bit, on the host and emulated Cortex-M",
                       description="Build the exported C for each target, run it on every "
                                   "stored test input and compare every output integer with "
                                   "the simulator; exit status 1 on any mismatch.")
    add_verify_arguments(p)
    p = sub.add_parser("eval", help="evaluate a run on its dataset's test split")
    p.add_argument("run", type=Path, help="run directory")
    p.add_argument("--data-dir", type=Path, default=None, help="override the dataset location")
    p = sub.add_parser("info", help="show a run's configuration, metrics and storage per tensor")
    p.add_argument("run", type=Path, help="run directory")
    sub.add_parser("datasets", help="list the datasets kiloml knows and whether they are present")
    return parser


def _fast_only(args) -> None:
    """Compression options given for GRU/LSTM are an error, not silently ignored."""
    if args.model in ("fastgrnn", "fastrnn"):
        return
    given = [flag for flag, value in (("--w-rank", args.w_rank), ("--u-rank", args.u_rank),
                                      ("--sparsity-w", args.sparsity_w),
                                      ("--sparsity-u", args.sparsity_u),
                                      ("--sparsity-head", args.sparsity_head),
                                      ("--gate-nonlinearity", args.gate_nonlinearity),
                                      ("--update-nonlinearity", args.update_nonlinearity))
             if value is not None]
    if given:
        raise KilomlError(f"{', '.join(given)} apply to fastgrnn and fastrnn, not {args.model}")


def _option(value, default):
    return default if value is None else value


def _model_config(args, data, recipe):
    from kiloml.nn.classifier import ModelConfig

    _fast_only(args)
    w_rank = _option(args.w_rank, DEFAULTS["w_rank"]) or None
    u_rank = _option(args.u_rank, DEFAULTS["u_rank"]) or None
    fast = args.model in ("fastgrnn", "fastrnn")
    readout = _option(args.readout, recipe.readout if fast else "last")
    return ModelConfig(kind=args.model, input_size=data.num_features,
                       num_classes=data.num_classes, hidden_size=args.hidden_size,
                       w_rank=w_rank if fast else None, u_rank=u_rank if fast else None,
                       **({"gate_nonlinearity": _option(args.gate_nonlinearity,
                                                        DEFAULTS["gate_nonlinearity"]),
                           "update_nonlinearity": _option(args.update_nonlinearity,
                                                          recipe.update_nonlinearity)}
                          if fast else {}),
                       bidirectional=args.bidirectional, readout=readout,
                       frame_stack=_option(args.frame_stack, recipe.frame_stack)).validate()


def _train_config(args, budget, recipe):
    from kiloml.train.trainer import TrainConfig

    fast = args.model in ("fastgrnn", "fastrnn")
    return TrainConfig(epochs=budget.epochs, batch_size=budget.batch_size, lr=args.lr,
                       keep_w=_option(args.sparsity_w, DEFAULTS["sparsity_w"]) if fast else 1.0,
                       keep_u=_option(args.sparsity_u, DEFAULTS["sparsity_u"]) if fast else 1.0,
                       keep_head=(_option(args.sparsity_head, DEFAULTS["sparsity_head"])
                                  if fast else 1.0),
                       augment_scale=_option(args.augment_scale, recipe.augment_scale),
                       augment_noise=_option(args.augment_noise, recipe.augment_noise),
                       augment_rotation=_option(args.augment_rotation, recipe.augment_rotation),
                       patience=args.patience, seed=args.seed).validate()


def _training_defaults(args, data) -> dict:
    """The data-dependent choices of a new run (stored in ``config.json`` under ``defaults``):
    recipe, how the epoch is chosen, and the budget."""
    from kiloml.train.budget import training_budget
    from kiloml.train.cross_validation import needs_cross_validation
    from kiloml.train.recipes import choose_recipe

    recipe = choose_recipe(data, None if args.recipe == "auto" else args.recipe)
    folds = args.folds if args.folds is not None else (
        FOLDS if needs_cross_validation(data) else 0)
    if folds == 1 or folds > len(data.train) + len(data.val):
        raise KilomlError(f"--folds must be 0 or from 2 to the number of training sequences "
                          f"({len(data.train) + len(data.val)}); got {folds}")
    train_sequences = len(data.train) + (len(data.val) if folds else 0)
    budget = training_budget(train_sequences, args.epochs, args.batch_size)
    if folds:
        why = (f"the validation split holds {len(data.val)} sequences (< {MIN_VALIDATION})"
               if args.folds is None else f"--folds {folds}")
        selection = {"folds": folds, "text": (
            f"epoch chosen by {folds}-fold cross-validation on the {train_sequences} training "
            f"and validation sequences ({why}); the final model trains on all of them")}
    else:
        selection = {"folds": 0, "text": f"epoch chosen on the {len(data.val)} validation "
                                         "sequences"}
    return {"recipe": recipe.to_dict(), "budget": budget.to_dict(), "selection": selection}


def _print_defaults(defaults: dict, model_config) -> None:
    from kiloml.train.budget import Budget
    from kiloml.train.recipes import Recipe

    recipe = Recipe(**defaults["recipe"])
    console.print(recipe.describe())
    if model_config.frame_stack > 1 or recipe.frame_stack_reason:
        stacked = (recipe.frame_stack_reason if model_config.frame_stack == recipe.frame_stack
                   else f"--frame-stack {model_config.frame_stack}")
        console.print(f"input: {stacked}")
    console.print(f"budget: {Budget.from_dict(defaults['budget']).describe()}")
    console.print(f"selection: {defaults['selection']['text']}")


def command_train(args) -> int:
    import torch

    from kiloml.data import load_dataset, load_run_dataset
    from kiloml.nn.classifier import ModelConfig
    from kiloml.progress import RichReporter, summary_table
    from kiloml.runs import CHECKPOINT_FILE, read_run_config, save_run_config
    from kiloml.train.budget import Budget
    from kiloml.train.fit import check_frame_stack, fit
    from kiloml.train.recipes import Recipe
    from kiloml.train.trainer import TrainConfig

    torch.set_num_threads(args.threads)
    run_dir = args.out or Path("runs") / f"{Path(args.dataset).stem}-{args.model}"
    if args.resume:
        config = read_run_config(run_dir)
        data = load_run_dataset(config["data"], windowing=True)
        model_config = ModelConfig.from_dict(config["model"])
        train_fields = {k: tuple(v) if k == "phase_fractions" else v
                        for k, v in config["train"].items()}
        train_config = TrainConfig(**train_fields).validate()
        defaults = config.get("defaults")
        console.print(f"resuming {run_dir} from its last checkpoint")
    else:
        if run_dir.exists() and any(run_dir.iterdir()):
            if not args.overwrite:
                raise KilomlError(f"{run_dir} already holds a run; pass --resume to continue it, "
                                  "--overwrite to replace it, or choose another --out")
            shutil.rmtree(run_dir)
        _fast_only(args)
        data = load_dataset(args.dataset, args.data_dir, skip_bad_files=args.skip_bad_files,
                            train_hop=args.train_hop, train_speeds=args.train_speeds)
        _report_skipped(data)
        defaults = _training_defaults(args, data)
        recipe, budget = Recipe(**defaults["recipe"]), Budget.from_dict(defaults["budget"])
        if args.frame_stack is None and recipe.pad_front:
            data = data.pad_front(data.steps + recipe.pad_front)
        model_config = _model_config(args, data, recipe)
        check_frame_stack(model_config, data)
        train_config = _train_config(args, budget, recipe)
        run_dir.mkdir(parents=True, exist_ok=True)
        from kiloml.data.registry import DATASETS

        data_info = {"dataset": data.name if args.dataset in DATASETS else args.dataset,
                     "data_dir": str(args.data_dir) if args.data_dir else None,
                     "skip_bad_files": args.skip_bad_files,
                     "steps": data.steps, "num_features": data.num_features,
                     "class_names": data.class_names,
                     "sizes": {s: len(getattr(data, s)) for s in ("train", "val", "test")}}
        if args.train_hop is not None:
            data_info["train_hop"] = args.train_hop
        if args.train_speeds is not None:
            data_info["train_speeds"] = data.info["train_speeds"]
        if "padded_from" in data.info:  # load_run_dataset pads again
            data_info["padded_from"] = data.info["padded_from"]
        if "sample_rate" in data.info:  # audio: features come from the log-mel front end
            data_info["sample_rate"] = data.info["sample_rate"]
        save_run_config(run_dir, model_config, data_info, train_config.to_dict(),
                        defaults=defaults)
    console.print(f"[bold]{data.name}[/]: {len(data.train)} train / {len(data.val)} val / "
                  f"{len(data.test)} test sequences of {data.steps} steps × "
                  f"{data.num_features} features, {data.num_classes} classes")
    if defaults is not None:
        _print_defaults(defaults, model_config)
    folds = defaults["selection"]["folds"] if defaults is not None else 0
    phases = ", ".join(f"{p.kind} {p.epochs}" for p in train_config.phases())
    console.print(f"training {model_config.kind} h={model_config.hidden_size} "
                  f"(phases: {phases} epochs) into {run_dir}")

    def on_fold(fold: int, held_out: int, result) -> None:
        last = result.history[-1]
        console.print(f"fold {fold + 1}/{folds}: {held_out} sequences held out, accuracy at "
                      f"the last epoch {100 * last.val_accuracy:.1f}% "
                      f"({result.train_seconds:.1f} s)")

    reporter = RichReporter(console)
    try:
        outcome = fit(data, model_config, train_config, checkpoint_path=run_dir / CHECKPOINT_FILE,
                      resume=args.resume, reporter=reporter, folds=folds, on_fold=on_fold,
                      fold_reporter=RichReporter(console, epoch_lines=False, label="fold epochs"))
    except KeyboardInterrupt:
        console.print(f"\ninterrupted; the last finished epoch is saved. Continue with:\n"
                      f"  kiloml train --out {run_dir} --resume")
        return 130
    if defaults is not None:
        outcome.metrics.update({"recipe": defaults["recipe"], "budget": defaults["budget"]})
    outcome.metrics["frame_stack"] = model_config.frame_stack
    _write_run_outputs(run_dir, data, outcome)
    console.print(summary_table(outcome.metrics, f"{run_dir}"))
    if outcome.metrics.get("warning"):
        console.print(f"[yellow]warning:[/] {outcome.metrics['warning']}")
    return 0


def _report_skipped(data) -> None:
    """Say how many files a ``--skip-bad-files`` load left out, and why."""
    skipped = data.info.get("skipped_files", [])
    if not skipped:
        return
    console.print(f"[yellow]skipped {len(skipped)} bad file(s):[/]")
    for file, reason in skipped[:20]:
        console.print(f"  {file}: {reason}")
    if len(skipped) > 20:
        console.print(f"  ... and {len(skipped) - 20} more")


def _write_run_outputs(run_dir: Path, data, outcome) -> None:
    from dataclasses import asdict

    from kiloml.plots import confusion_matrix, plot_confusion, plot_history
    from kiloml.runs import METRICS_FILE, WEIGHTS_FILE, save_weights, write_json

    save_weights(outcome.model, run_dir / WEIGHTS_FILE)
    write_json(run_dir / METRICS_FILE, outcome.metrics)
    history = [asdict(r) for r in outcome.result.history]
    cv = outcome.cross_validation
    if cv is not None:  # the validation curve is the folds' mean held-out accuracy and loss
        for record in history:
            record["val_accuracy"] = cv.mean_accuracy[record["epoch"]]
            record["val_loss"] = cv.mean_loss[record["epoch"]]
    title = f"{data.name}: {outcome.model.config.kind} h={outcome.model.config.hidden_size}"
    plot_history(history, run_dir / "history.png", title + (
        f" (validation: mean of {cv.folds} held-out folds)" if cv is not None else ""))
    matrix = confusion_matrix(data.test.y, outcome.test_predictions, data.num_classes)
    plot_confusion(matrix, data.class_names, run_dir / "confusion.png",
                   f"{title}, test accuracy {100 * outcome.metrics['test_accuracy']:.1f}%")


def command_eval(args) -> int:
    from kiloml.data import load_run_dataset
    from kiloml.runs import load_run
    from kiloml.train.fit import model_metrics

    config, model = load_run(args.run)
    data = load_run_dataset(config["data"], args.data_dir)
    if data.num_features != model.config.input_size or data.num_classes != model.config.num_classes:
        raise KilomlError(f"{config['data']['dataset']}: {data.num_features} features / "
                          f"{data.num_classes} classes, but the model expects "
                          f"{model.config.input_size} / {model.config.num_classes}")
    metrics, _ = model_metrics(model, data)
    console.print(f"{args.run}: test accuracy {100 * metrics['test_accuracy']:.2f}% on "
                  f"{len(data.test)} {data.name} sequences; model size "
                  f"{metrics['model_size_bytes']:,} B (float32)")
    return 0


def command_info(args) -> int:
    from kiloml.compress.size import model_storage
    from kiloml.runs import METRICS_FILE, load_run, read_json

    config, model = load_run(args.run)
    console.print_json(json.dumps({"model": config["model"], "train": config["train"]}))
    metrics_path = args.run / METRICS_FILE
    if metrics_path.is_file():
        metrics = read_json(metrics_path)
        console.print(f"test accuracy {100 * metrics['test_accuracy']:.2f}%, "
                      f"{metrics['model_size_bytes']:,} B float32, "
                      f"{metrics['macs_per_inference']:,} MACs per inference")
    table = Table(title="storage as deployed (float32)")
    for col in ("tensor", "shape", "nonzeros", "format", "bytes"):
        table.add_column(col, justify="left" if col in ("tensor", "format") else "right")
    storage = model_storage(model)
    for t in storage:
        table.add_row(t.name, "×".join(map(str, t.shape)), str(t.nonzeros), t.format,
                      f"{t.bytes:,}")
    table.add_row("total", "", "", "", f"{sum(t.bytes for t in storage):,}")
    console.print(table)
    return 0


def command_datasets(args) -> int:
    from kiloml.data.registry import DATASETS, dataset_location

    table = Table(title="datasets")
    for col in ("name", "description", "looks in", "present"):
        table.add_column(col)
    for name, (_, description) in DATASETS.items():
        where = dataset_location(name)
        present = where is not None and Path(where).exists()
        table.add_row(name, description, str(where or "-"),
                      "[green]yes[/]" if present else "[red]no[/]")
    console.print(table)
    console.print("Your own data: --dataset FILE.npz (X_train, y_train, X_test, y_test), a .ts "
                  "pair NAME_TRAIN.ts/NAME_TEST.ts (either file or NAME), or a folder of WAVs in "
                  "one sub-folder per label. Data root: $KILOML_DATA or ./data.")
    return 0


def command_demo(args) -> int:
    """Train, then export to ``RUN/c`` and verify (the README's main job)."""
    status = command_train(args)
    if status != 0:
        return status
    run_dir = args.out or Path("runs") / f"{Path(args.dataset).stem}-{args.model}"
    if args.model not in ("fastgrnn", "fastrnn"):
        console.print(f"{args.model} has no integer C export; stopping after training")
        return 0
    export_dir = run_dir / "c"
    console.rule("export")
    status = run_export(argparse.Namespace(run=run_dir, out=export_dir, bits=args.bits,
                                           target="c", name="kiloml_model", data=None,
                                           data_dir=args.data_dir))
    if status != 0:
        return status
    console.rule("verify")
    return run_verify(argparse.Namespace(dir=export_dir, targets=",".join(VERIFY_TARGETS)))


COMMANDS = {"train": command_train, "demo": command_demo, "eval": command_eval,
            "info": command_info, "export": run_export, "verify": run_verify,
            "datasets": command_datasets}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except KilomlError as e:
        error_console.print(f"[red]error:[/] {e}", markup=True)
        return 1
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
