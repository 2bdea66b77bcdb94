"""``kiloml`` command line: train, eval, info, export, verify, datasets and demo (the main job:
train → export → verify).

Every command runs under one error boundary (:func:`main`): whatever goes wrong ends in a
one-line ``error:`` on stderr (user values printed as they are, never read as markup) and exit
status 1; ``--debug`` also prints the traceback. Argument errors exit with 2. Outputs are
written through :mod:`kiloml.outputs`, after every input was checked.
"""

import argparse
import io
import json
import math
import os
import sys
import traceback
from contextlib import ExitStack, redirect_stderr
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from kiloml import __version__
from kiloml.deploy.commands import (
    EXPORT_OUTPUT,
    add_export_arguments,
    add_verify_arguments,
    run_export,
    run_verify,
)
from kiloml.deploy.verify import DEFAULT_TARGETS
from kiloml.errors import KilomlError
from kiloml.models import FAMILIES
from kiloml.nn.nonlinearity import FUNCTIONS as NONLINEARITIES
from kiloml.outputs import check_output_dir, claim_output_dir
from kiloml.runs import RUN_OUTPUT
from kiloml.train.budget import (
    MAX_BATCH,
    MIN_BATCH,
    MIN_EPOCHS,
    MIN_STEPS,
    SEQUENCES_PER_BATCH,
)
from kiloml.train.cross_validation import FOLDS, MIN_VALIDATION
from kiloml.train.recipes import IMU_STEPS, SERIES_STEPS

console = Console(highlight=False, emoji=False, soft_wrap=True)  # pipes and logs: whole lines
error_console = Console(stderr=True, highlight=False, emoji=False, soft_wrap=True)

#: Defaults that do not depend on the data. The training budget (epochs, batch size) comes from
#: the training-set size (``train.budget``); augmentation, readout, candidate nonlinearity and
#: frame stacking from the recipe for the kind of data (``train.recipes``); how the epoch is
#: chosen from the size of the validation split (``train.cross_validation``).
DEFAULTS = {
    "dataset": "smartwatch", "model": "fastgrnn", "hidden_size": 32, "w_rank": None,
    "u_rank": 8, "sparsity_w": 0.5, "sparsity_u": 0.5, "sparsity_head": 1.0, "lr": 1e-2,
    "seed": 0, "gate_nonlinearity": "sigmoid", "channels": 32, "blocks": 3, "kernel_size": 5,
    "stride": 2,
}
#: ProtoNN's defaults: its model options and the kept fractions of W (the projection), B (the
#: prototypes, --sparsity-u) and Z (the label vectors, --sparsity-head).
PROTONN_DEFAULTS = {"projection_dim": 10, "prototypes": 20, "gamma": None, "scale": "common",
                    "sparsity_w": 0.2, "sparsity_u": 1.0, "sparsity_head": 1.0}
#: Bonsai's defaults: the kept fractions of Z (the projection), theta (--sparsity-u) and the
#: node predictors W and V (--sparsity-head).
BONSAI_DEFAULTS = {"projection_dim": 10, "depth": 2, "sigma": 1.0, "scale": "common",
                   "sparsity_w": 0.2, "sparsity_u": 1.0, "sparsity_head": 1.0}
RECIPES = ("auto", "imu", "audio", "image", "series", "vector", "vision")
#: The vision families (images [N, C, H, W]) and their options.
VISION_FAMILIES = ("mobilenetv2", "rnnpool-mobilenetv2")
VISION_OPTIONS = (("--width-mult", "width_mult"),)
RNNPOOL_OPTIONS = (("--rnnpool-patch", "rnnpool_patch"), ("--rnnpool-stride", "rnnpool_stride"),
                   ("--rnnpool-hidden", "rnnpool_hidden"))
VISION_DEFAULTS = {"width_mult": 1.0, "rnnpool_patch": 6, "rnnpool_stride": 4,
                   "rnnpool_hidden": None}
#: Options of the recurrent families that a DS-CNN has no use for.
RECURRENT_ONLY = (("--hidden-size", "hidden_size"), ("--frame-stack", "frame_stack"),
                  ("--readout", "readout"), ("--bidirectional", "bidirectional"))
#: The DS-CNN's own options.
DSCNN_OPTIONS = (("--channels", "channels"), ("--blocks", "blocks"),
                 ("--kernel-size", "kernel_size"), ("--stride", "stride"))
#: Options of ProtoNN and Bonsai, and of each alone.
VECTOR_OPTIONS = (("--projection-dim", "projection_dim"), ("--scale", "scale"))
PROTONN_OPTIONS = (("--prototypes", "prototypes"), ("--gamma", "gamma"))
BONSAI_OPTIONS = (("--depth", "depth"), ("--sigma", "sigma"))
#: ShaRNN's own options (--hidden-size is its lower RNN's; --readout its upper RNN's).
SHARNN_OPTIONS = (("--brick-size", "brick_size"), ("--cell", "cell"),
                  ("--upper-cell", "upper_cell"), ("--instances-from", "instances_from"))
#: ShaRNN's upper RNN, or the cascade's upper tier.
UPPER_OPTIONS = (("--upper-hidden-size", "upper_hidden_size"),)
#: The cascade's own options and defaults (its tiers' sizes; the threshold, when not given,
#: is chosen on the validation split).
CASCADE_OPTIONS = (("--lower-hidden-size", "lower_hidden_size"),
                   ("--cascade-threshold", "cascade_threshold"), ("--noise-class", "noise_class"))
CASCADE_DEFAULTS = {"lower_hidden_size": 8, "upper_hidden_size": 32, "noise_class": "_silence_"}
#: EMI-FastGRNN's own options and defaults (EdgeML's HAR example: 48-step instances every 16).
EMI_OPTIONS = (("--instance-width", "instance_width"), ("--instance-stride", "instance_stride"),
               ("--keep-instances", "keep_instances"), ("--rounds", "rounds"),
               ("--exit-threshold", "exit_threshold"))
EMI_DEFAULTS = {"instance_width": 48, "instance_stride": 16, "keep_instances": 3, "rounds": 2,
                "exit_threshold": 0.95}
#: ShaRNN's defaults (its lower RNN's --hidden-size is 16).
SHARNN_DEFAULTS = {"hidden_size": 16, "upper_hidden_size": 32, "cell": "fastgrnn",
                   "upper_cell": "fastgrnn"}
#: Families that train with hard thresholding to --sparsity-w/-u/-head budgets.
SPARSE_FAMILIES = ("fastgrnn", "fastrnn", "protonn", "bonsai", "emi-fastgrnn", "cascade")


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


def _count(text: str) -> int:
    """A whole number >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or a positive number, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or a positive number, got {value}")
    return value


def _per_recipe(name: str) -> str:
    """``imu 0.1, audio 0.1, ...``: a default per recipe, for ``--help``."""
    from kiloml.train.recipes import AUDIO, IMAGE, IMU, SERIES

    return ", ".join(f"{r.kind} {getattr(r, name):g}" for r in (IMU, AUDIO, IMAGE, SERIES))


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1], got {value}")
    return value


def _open_fraction(text: str) -> float:
    return _number(text, lambda v: 0.0 < v < 1.0, "a number in (0, 1)")


def _number(text: str, condition, wanted: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
    if not (math.isfinite(value) and condition(value)):
        raise argparse.ArgumentTypeError(f"expected {wanted}, got {text}")
    return value


def _positive_number(text: str) -> float:
    return _number(text, lambda v: v > 0, "a positive number")


def _non_negative_number(text: str) -> float:
    return _number(text, lambda v: v >= 0, "0 or a positive number")


def _seed(text: str) -> int:
    from kiloml.train.trainer import MAX_SEED

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected a seed from 0 to {MAX_SEED}, got {value}")
    return value


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    d = DEFAULTS
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default=d["dataset"],
                   help="dataset name (see `kiloml datasets`), or your own data: a .npz with "
                        "X_train, y_train, X_test, y_test as [N, T, F] (or [N, F] feature "
                        "vectors for protonn) / [N], a UEA .ts pair "
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
    g.add_argument("--model", default=d["model"], choices=list(FAMILIES),
                   help="model family: a recurrent cell, sharnn (two levels of RNN over "
                        "bricks), emi-fastgrnn (multi-instance with early exit), dscnn (a 1-D "
                        "depthwise-separable CNN), protonn or bonsai "
                        "(for feature vectors), or mobilenetv2 or rnnpool-mobilenetv2 (for "
                        "images; exported at int8) (default: %(default)s)")
    g.add_argument("--hidden-size", type=_positive_int, default=None,
                   help=f"recurrent models: hidden units (default: {d['hidden_size']})")
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
                        "the recipe: mean for FastGRNN/FastRNN on audio, else last; ShaRNN: "
                        "its upper level's states, likewise)")
    g.add_argument("--bidirectional", action="store_true", default=None,
                   help="run a second, reversed cell")
    g = p.add_argument_group(
        "DS-CNN (--model dscnn)",
        "conv over time (features as input channels) + BatchNorm + ReLU, then BLOCKS x "
        "[depthwise conv (kernel 3) + pointwise 1x1 conv, each with BatchNorm and ReLU], the "
        "mean over time and a linear head; BatchNorm is folded into the convolutions on export")
    g.add_argument("--channels", type=_positive_int, default=None,
                   help=f"channels of every convolution (default: {d['channels']})")
    g.add_argument("--blocks", type=_count, default=None,
                   help=f"depthwise-separable blocks (default: {d['blocks']})")
    g.add_argument("--kernel-size", type=_positive_int, default=None,
                   help="time steps the first convolution sees, zero-padded by (K - 1) // 2 "
                        f"on both sides (default: {d['kernel_size']})")
    g.add_argument("--stride", type=_positive_int, default=None,
                   help=f"stride of the first convolution in time (default: {d['stride']})")
    pd = PROTONN_DEFAULTS
    g = p.add_argument_group(
        "ProtoNN (--model protonn; --projection-dim and --scale also bonsai)",
        "feature vectors [N, F] (dataset mnist, mnist-2, fashion-mnist or a .npz with 2-D X): "
        "a sparse projection W to D dimensions, M prototypes B with label vectors Z, scores "
        "Z exp(-gamma^2 ||Wx - b_j||^2); prototypes start from class-wise k-means, W, B and Z "
        "train jointly with hard thresholding to --sparsity-w/-u/-head")
    g.add_argument("--projection-dim", type=_positive_int, default=None, metavar="D",
                   help=f"dimensions of the projection Wx (default: {pd['projection_dim']})")
    g.add_argument("--prototypes", type=_positive_int, default=None, metavar="M",
                   help="prototypes, spread evenly over the classes (at least one per class; "
                        f"default: {pd['prototypes']})")
    g.add_argument("--gamma", type=_positive_number, default=None,
                   help="initial RBF width gamma (trained; default: the median heuristic "
                        "1 / (2.5 * median distance from projected training vectors to the "
                        "prototypes))")
    g.add_argument("--scale", choices=["common", "feature"], default=None,
                   help="normalisation: centre each feature and divide by one common standard "
                        "deviation (folded into W on export), or by each feature's own (a "
                        f"normalisation step on export; default: {pd['scale']})")
    bd = BONSAI_DEFAULTS
    g = p.add_argument_group(
        "Bonsai (--model bonsai)",
        "feature vectors [N, F] like ProtoNN (--projection-dim and --scale apply): a sparse "
        "projection p = Zx/d + b (as EdgeML: Z from N(0, 1), a learned bias b), then a binary "
        "tree of the given depth; every node k on an input's path adds (W_k p) * "
        "tanh(sigma V_k p), an internal node sends it left when theta_k.p > 0; "
        "training relaxes the path with tanh(sigma_I theta.p), sigma_I annealed from 1 to "
        "1000; Z, theta and W, V train jointly with hard thresholding to "
        "--sparsity-w/-u/-head (theta node by node), under the paper's L2 penalty (weights "
        "1e-5 on Z, 1e-4 on W, V and theta)")
    g.add_argument("--depth", type=_count, default=None,
                   help=f"depth of the tree, 0 = one node (default: {bd['depth']})")
    g.add_argument("--sigma", type=_positive_number, default=None,
                   help=f"sharpness sigma of the nodes' tanh (default: {bd['sigma']:g})")
    sd = SHARNN_DEFAULTS
    g = p.add_argument_group(
        "ShaRNN (--model sharnn)",
        "a shared lower RNN reads every brick of K consecutive steps from a zero state "
        "(--hidden-size units, default 16), an upper RNN reads the bricks' last states; "
        "--readout, --w-rank, --u-rank, the nonlinearities and the sparsity options apply to "
        "both levels' FastGRNN/FastRNN cells. MI-ShaRNN: --instances-from EMI_RUN")
    g.add_argument("--brick-size", type=_positive_int, default=None, metavar="K",
                   help="steps per brick; must divide the sequence length (default: the "
                        "largest divisor of the sequence length not above its square root: "
                        "8 for 128 steps)")
    g.add_argument("--upper-hidden-size", type=_positive_int, default=None,
                   help=f"hidden units of the upper RNN (default: {sd['upper_hidden_size']}; "
                        f"the cascade's upper tier: {CASCADE_DEFAULTS['upper_hidden_size']})")
    g.add_argument("--cell", choices=["fastgrnn", "fastrnn", "gru", "lstm"], default=None,
                   help=f"cell of the lower RNN (default: {sd['cell']})")
    g.add_argument("--upper-cell", choices=["fastgrnn", "fastrnn", "gru", "lstm"],
                   default=None, help=f"cell of the upper RNN (default: {sd['upper_cell']})")
    g.add_argument("--instances-from", type=Path, default=None, metavar="EMI_RUN",
                   help="MI-ShaRNN: train on the instances the emi-fastgrnn run EMI_RUN "
                        "relabelled (every window of its dataset's splits cut into its "
                        "instances; the k consecutive ones its model finds most likely of the "
                        "window's class keep the label, the others become a noise class), "
                        "written into the run as instances.npz; the data is the EMI run's "
                        "(no --dataset). kiloml eval --stream then decides every brick on "
                        "the longest run of a class in a window's last instance decisions")
    vd = VISION_DEFAULTS
    g = p.add_argument_group(
        "vision (--model mobilenetv2, rnnpool-mobilenetv2)",
        "images [N, C, H, W] (dataset cifar10 or cifar10-animals-vs-vehicles-96). mobilenetv2: "
        "stem conv 3x3, the inverted residual stages of MobileNetV2 (expand 1x1, depthwise "
        "3x3, project 1x1, residual when the shapes match; BatchNorm, ReLU6), conv 1x1, mean, "
        "linear; the earliest stride-2 layers become stride 1 until the last map is at least "
        "3x3 (32x32: 4x4 at the end; 96x96: 3x3). rnnpool-mobilenetv2: the stem, then one "
        "RNNPool layer over patches of its map in place of the 16-, 24- and 32-channel "
        "stages, then the rest. Both train with the vision recipe (random crop after zero "
        "padding by 1/8 of the side, horizontal flip; --no-augment) and the learning rate "
        "cosine-decayed over all steps; kiloml export writes them as int8 C under a schedule "
        "(--schedule layers|patches|rnnpool)")
    g.add_argument("--width-mult", type=_positive_number, default=None, metavar="W",
                   help="width multiplier: every layer's channels times W, rounded to a "
                        f"multiple of 8 (the last conv's 1280 too) (default: {vd['width_mult']})")
    g.add_argument("--rnnpool-patch", type=_positive_int, default=None, metavar="PIXELS",
                   help="rnnpool-mobilenetv2: side of RNNPool's square patches on the stem's "
                        "map, at most the map's side and at least the stride (default: "
                        f"{vd['rnnpool_patch']})")
    g.add_argument("--rnnpool-stride", type=_positive_int, default=None, metavar="PIXELS",
                   help="rnnpool-mobilenetv2: pixels between patch starts; the map is "
                        "zero-padded so that RNNPool's output has ceil(side / stride) rows and "
                        f"columns (default: {vd['rnnpool_stride']})")
    g.add_argument("--rnnpool-hidden", type=_positive_int, default=None, metavar="H",
                   help="rnnpool-mobilenetv2: hidden units of both RNNs (h1 = h2; 4H output "
                        "channels) (default: half the width-scaled 32-channel stage's channels: "
                        "16 at --width-mult 1)")
    ed = EMI_DEFAULTS
    g = p.add_argument_group(
        "EMI-FastGRNN (--model emi-fastgrnn)",
        "every sequence becomes a bag of overlapping instances; a FastGRNN with a loss at every "
        "step learns them with the bag's label, then each round relabels (the K consecutive "
        "instances most likely of the bag's class keep it, the others become a noise class) and "
        "trains on (--epochs per round); an instance stops at the first step whose top "
        "probability reaches the threshold, a bag takes the class of the longest run of "
        "instances predicting it. kiloml export writes the instance's C (kiloml_predict reads "
        "one instance to its end) and a streaming API, kiloml_stream_push, that reads an "
        "instance every stride frames step by step and stops at the first step whose top "
        "logit leads the runner-up by ln(P / (1 - P)) (an integer margin fixed at export; the "
        "top probability against the runner-up alone); kiloml eval --stream decides the same "
        "way")
    g.add_argument("--instance-width", type=_positive_int, default=None, metavar="STEPS",
                   help=f"steps per instance (default: {ed['instance_width']})")
    g.add_argument("--instance-stride", type=_positive_int, default=None, metavar="STEPS",
                   help=f"steps between instance starts (default: {ed['instance_stride']})")
    g.add_argument("--keep-instances", type=_positive_int, default=None, metavar="K",
                   help="consecutive instances of a bag that keep its label when relabelling "
                        f"(default: {ed['keep_instances']})")
    g.add_argument("--rounds", type=_non_negative_int, default=None,
                   help=f"relabelling rounds after the first training (default: {ed['rounds']})")
    g.add_argument("--exit-threshold", type=_fraction, default=None, metavar="P",
                   help="stop reading an instance at the first step whose top probability "
                        "reaches P (streams and the C: whose top logit leads the runner-up by "
                        f"ln(P / (1 - P))) (default: {ed['exit_threshold']})")
    cd = CASCADE_DEFAULTS
    g = p.add_argument_group(
        "cascade (--model cascade)",
        "MSC-RNN style: a lower FastGRNN tier learns nothing (the noise class) against "
        "something (any other class); an upper FastGRNN tier (--upper-hidden-size) learns the "
        "other classes and runs only where the lower tier's probability of something reaches "
        "the threshold; --w-rank, --u-rank (capped at each tier's size), --readout, "
        "--frame-stack, the nonlinearities and --sparsity-w/-u/-head apply to both tiers, "
        "each trained with the same budget; `kiloml eval` reports the fraction of upper-tier "
        "calls; Python only (no export yet)")
    g.add_argument("--lower-hidden-size", type=_positive_int, default=None,
                   help=f"hidden units of the lower tier (default: {cd['lower_hidden_size']})")
    g.add_argument("--cascade-threshold", type=_open_fraction, default=None, metavar="P",
                   help="call the upper tier when the lower tier's probability of something "
                        "is at least P, in (0, 1) (default: of 0.05, 0.10, ..., 0.95 the one "
                        "with the best validation accuracy, the highest on ties)")
    g.add_argument("--noise-class", default=None, metavar="NAME",
                   help="the class that means nothing happened (default: "
                        f"{cd['noise_class']})")
    g = p.add_argument_group("compression (FastGRNN/FastRNN/ShaRNN/ProtoNN/Bonsai/cascade)")
    g.add_argument("--sparsity-w", type=_fraction, default=None,
                   help="fraction of W's weights kept after hard thresholding (ProtoNN: the "
                        f"projection W; Bonsai: the projection Z), 1 = dense (default: "
                        f"{d['sparsity_w']}; protonn: {pd['sparsity_w']}; bonsai: "
                        f"{bd['sparsity_w']})")
    g.add_argument("--sparsity-u", type=_fraction, default=None,
                   help="fraction of U's weights kept (ProtoNN: the prototypes B; Bonsai: "
                        f"theta), 1 = dense (default: {d['sparsity_u']}; protonn: "
                        f"{pd['sparsity_u']}; bonsai: {bd['sparsity_u']})")
    g.add_argument("--sparsity-head", type=_fraction, default=None,
                   help="fraction of the classifier head's weights kept (ProtoNN: the label "
                        f"vectors Z; Bonsai: every W_k and V_k), 1 = dense (default: "
                        f"{d['sparsity_head']}; protonn: {pd['sparsity_head']}; bonsai: "
                        f"{bd['sparsity_head']})")
    g.add_argument("--sparsity-block", type=_positive_int, default=None, metavar="B",
                   help="hard thresholding keeps whole blocks of B consecutive weights along "
                        "each row, the blocks of largest L2 norm, round(fraction x blocks) of "
                        "them (a row's last block is shorter when B does not divide its "
                        "length); blocks of 4 let the Cortex-M kernels multiply in aligned "
                        "pairs (default: 1, single weights)")
    g.add_argument("--compress", choices=("iht", "str"), default=None,
                   help="iht: keep the fractions --sparsity-w/-u/-head by iterative hard "
                        "thresholding (the FastGRNN paper); str: learn how much of each matrix "
                        "to keep with soft thresholds (STR, Kusupati et al. 2020) at the total "
                        "--target-sparsity (default: iht)")
    g.add_argument("--target-sparsity", nargs="+", default=None,
                   metavar="FRACTION|GROUP=FRACTION",
                   help="--compress str: the fraction of zeros over all of W, U and the head "
                        "(e.g. 0.9), or per group (e.g. W=0.9 U=0.8; groups not named stay "
                        "dense); each matrix's share is learned")
    g.add_argument("--learn-rank", action="store_true", default=None,
                   help="--compress str: learn the ranks of W and U instead of their sparsity "
                        "(low-rank STR: a learned soft threshold on each matrix's singular "
                        "values, from full matrices, so no --w-rank/--u-rank); the head stays "
                        "entrywise. --target-sparsity then counts stored values: a matrix of "
                        "rank r stores r·(rows+cols) (its two factors, which export keeps), at "
                        "most rows·cols")
    g = p.add_argument_group("training")
    g.add_argument("--recipe", choices=RECIPES, default="auto",
                   help="defaults for a kind of data: imu (3-axis sensor channels: rotation, "
                        "gain, noise), audio (log-mel: mean readout, tanh), image (rows as "
                        "steps), series (anything else: noise; long series read in frames), "
                        "vector (feature vectors: no augmentation), vision (images for "
                        "mobilenetv2/rnnpool-mobilenetv2: random crop after padding, "
                        "horizontal flip); "
                        "auto picks from the data and the model and prints why "
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
    g.add_argument("--lr", type=_positive_number, default=d["lr"],
                   help="peak Adam learning rate, cosine-decayed once over all epochs "
                        "(default: %(default)s)")
    g.add_argument("--augment-scale", type=_non_negative_number, default=None,
                   help="training augmentation: per-sequence, per-feature gain with this standard "
                        f"deviation around 1; 0 = off (default: {_per_recipe('augment_scale')})")
    g.add_argument("--augment-noise", type=_non_negative_number, default=None,
                   help="training augmentation: Gaussian noise, in units of each feature's "
                        f"standard deviation (default: {_per_recipe('augment_noise')})")
    g.add_argument("--augment-rotation", type=_non_negative_number, default=None,
                   help="training augmentation: random 3-D rotation (degrees, standard "
                        "deviation) of the dataset's 3-axis sensor channels; ignored for data "
                        f"without them (default: {_per_recipe('augment_rotation')})")
    g.add_argument("--augment-crop", type=_non_negative_int, default=None, metavar="PIXELS",
                   help="training augmentation of images: pad with this many black pixels on "
                        "every side, then crop back to the image size at a random offset; "
                        "with a random horizontal flip (default: vision recipe 1/8 of the "
                        "image side, 4 at 32x32 and 12 at 96x96; others 0)")
    g.add_argument("--no-augment", action="store_true", default=None,
                   help="train without any augmentation (no crop, flip, gain, noise or "
                        "rotation)")
    g.add_argument("--patience", type=_positive_int, default=None,
                   help="stop after this many epochs without validation improvement in the "
                        "final phase; not used with cross-validation (default: never)")
    g.add_argument("--seed", type=_seed, default=d["seed"],
                   help="random seed, 0 to 2**32-1 (default: %(default)s)")
    g.add_argument("--threads", type=_positive_int, default=1,
                   help="CPU threads for PyTorch; results are reproducible for a given seed and "
                        "thread count, and one thread is fastest for kilobyte models "
                        "(default: %(default)s)")
    g = p.add_argument_group("output")
    g.add_argument("--out", type=Path, default=None,
                   help="run directory to write (default: runs/DATASET-MODEL)")
    g.add_argument("--resume", action="store_true",
                   help="continue the interrupted run in --out from its last checkpoint, with "
                        "the settings and data it started with (other options that differ are "
                        "an error)")
    g.add_argument("--overwrite", action="store_true",
                   help="replace an earlier run in --out: only the files kiloml wrote there "
                        "are removed, and only after every input was checked; a folder kiloml "
                        "did not write is never touched")


class ArgumentParser(argparse.ArgumentParser):
    """argparse with a one-line error (``error: ...``, exit status 2) instead of the usage."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="kiloml",
        description="Train, compress and deploy kilobyte-sized FastGRNN/FastRNN models for "
                    "microcontrollers.",
        epilog="Run `kiloml COMMAND --help` for the options of a command.")
    parser.add_argument("--version", action="version", version=f"kiloml {__version__}")
    _add_debug(parser, False)
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
                                   "(int8 for the image models mobilenetv2 and "
                                   "rnnpool-mobilenetv2, under the schedule with the smallest "
                                   "planned peak RAM; `kiloml export`) and check the C against "
                                   "the integer "
                                   "simulator on the host and on emulated Cortex-M4/M3 "
                                   "(`kiloml verify`). Targets whose toolchain is missing are "
                                   "skipped with the command that installs it.")
    add_train_arguments(p)
    p.add_argument("--bits", type=int, choices=(8, 16), default=16,
                   help="weight width of the exported C (default: %(default)s; image models: "
                        "8, their only width)")
    p = sub.add_parser("export", help="quantize a run to integers and write freestanding C",
                       description="Post-training fixed-point quantization (power-of-two scales, "
                                   "int16 activations, int8/int16 weights) and C code generation: "
                                   "OUT/model.h, model.c, kiloml's C library, main.c, Makefile. "
                                   "ShaRNN and EMI-FastGRNN exports also get the streaming API "
                                   "kiloml_stream_init/kiloml_stream_push; an EMI-FastGRNN's "
                                   "kiloml_predict reads one instance, and its stored test "
                                   "inputs are the test windows' instances, each with its "
                                   "window's label.")
    add_export_arguments(p)
    p = sub.add_parser("verify", help="check an export's C against the integer simulator, "
                                      "bit for bit, on the host and emulated Cortex-M",
                       description="Build the exported C for each target, run it on every "
                                   "stored test input and compare every output integer with "
                                   "the simulator (a ShaRNN or EMI-FastGRNN export: its "
                                   "streaming API too, on the first test inputs as one stream, "
                                   "against the integer streaming spec); exit status 1 on any "
                                   "mismatch, when no target ran, or when a --require'd target "
                                   "was skipped.")
    add_verify_arguments(p)
    p = sub.add_parser("sweep", help="search kiloml train's options for the accuracy-size "
                                     "Pareto front (Ray Tune + Optuna; pip install "
                                     "'kiloml[sweep]')",
                       description="Run the trials SPACE.toml describes (docs/sweep.md) on Ray "
                                   "Tune, Optuna proposing them (validation accuracy up, "
                                   "deployed bytes down and, with m4_instructions among the "
                                   "objectives and the ARM toolchain present, Cortex-M4 "
                                   "instructions per inference down, counted in QEMU on each "
                                   "finished trial) and ASHA stopping poor ones; each "
                                   "trial is a run directory in OUT/runs. Writes "
                                   "OUT/results.csv, results.json and pareto.png; the front's "
                                   "runs alone are evaluated on the test split, at the end.")
    p.add_argument("space", type=Path, help="the search space (TOML)")
    p.add_argument("--out", type=Path, required=True, help="sweep directory to write")
    p.add_argument("--address", default=None, metavar="auto|HOST:PORT",
                   help="run on a running Ray cluster (auto: the one on this machine); kiloml "
                        "and the data must be at the same paths on every node (default: Ray "
                        "in this process)")
    p.add_argument("--workers", type=_positive_int, default=None,
                   help="trials at once (default: one per CPU core Ray sees)")
    p.add_argument("--resume", action="store_true",
                   help="continue a stopped sweep in --out: finished trials are kept, "
                        "interrupted ones continue from their checkpoints")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an earlier sweep in --out (only kiloml's files)")
    p = sub.add_parser("eval", help="evaluate a run on its dataset's test split",
                       description="Evaluate a run's float model on the test split of the data "
                                   "it was trained on (found by the absolute path the run "
                                   "recorded); data whose files changed since is refused "
                                   "unless named with --data.")
    p.add_argument("run", type=Path, help="run directory")
    p.add_argument("--data", default=None, metavar="DATASET",
                   help="evaluate on this dataset instead (a name or a .npz/.ts/WAV-folder "
                        "path), even if it differs from what the run was trained on")
    p.add_argument("--data-dir", type=Path, default=None, help="override the dataset location")
    g = p.add_argument_group(
        "streams (--stream)",
        "feed one whole stream instead of separate windows: smartwatch's test recordings end "
        "to end, or a clip dataset's test clips (speech-commands-12) each between noise "
        "(_silence_) clips; the model decides every --hop frames on its last window. Reports "
        "decision-level accuracy (against the window's majority class), events detected and "
        "their latency (from the event's first frame to the first decision of its class whose "
        "window overlaps it), false alarms per hour (onsets of a class whose window overlaps "
        "no event of it) and instructions per second of stream on an emulated Cortex-M, "
        "counted on the model's C (int8 by default; see docs/benchmarks.md). An EMI-FastGRNN "
        "reads an instance every stride frames with early exit and decides on its last "
        "instances' longest run; its pushes are counted on the stream's first 6,000 frames, "
        "only the steps it reads. An MI-ShaRNN (train --instances-from) streams its EMI run's "
        "dataset: it reads the last instance every brick and decides on the longest run of "
        "its window's last instance decisions")
    g.add_argument("--stream", action="store_true", help="evaluate on a whole stream")
    g.add_argument("--hop", type=_positive_int, default=None, metavar="FRAMES",
                   help="frames between decisions (default: a ShaRNN's brick, an "
                        "EMI-FastGRNN's instance stride (the only hops they take); other models "
                        "the largest divisor of the window not above its square root, the "
                        "brick a ShaRNN of that window gets by default)")
    g.add_argument("--gap", type=_non_negative_int, default=None, metavar="CLIPS",
                   help="clip datasets: noise clips before each event clip and after the last "
                        "(default: 1)")
    g.add_argument("--stream-seed", type=_seed, default=None,
                   help="clip datasets: seed of the clips' order and of the noise clips drawn "
                        "(default: 0)")
    g.add_argument("--bits", type=int, choices=(8, 16), default=None,
                   help="weight width of the C whose instructions are counted (default: 8)")
    g.add_argument("--target", choices=("cortex-m4", "cortex-m3", "none"), default=None,
                   help="where instructions are counted; none: skip (default: cortex-m4, "
                        "skipped with the install command when its toolchain is missing)")
    p = sub.add_parser("info", help="show a run's configuration, metrics and storage per tensor")
    p.add_argument("run", type=Path, help="run directory")
    sub.add_parser("datasets", help="list the datasets kiloml knows and whether they are present")
    parser.commands = dict(sub.choices)
    for command in parser.commands.values():
        _add_debug(command, argparse.SUPPRESS)
    return parser


def _add_debug(parser: argparse.ArgumentParser, default) -> None:
    parser.add_argument("--debug", action="store_true", default=default,
                        help="on an error, also print the Python traceback")


def _fast_only(args) -> None:
    """Compression options given for GRU/LSTM are an error, not silently ignored."""
    if args.model in ("fastgrnn", "fastrnn", "emi-fastgrnn", "cascade") or _sharnn_fast(args):
        return
    sparsity = () if args.model in SPARSE_FAMILIES else (
        ("--sparsity-w", args.sparsity_w), ("--sparsity-u", args.sparsity_u),
        ("--sparsity-head", args.sparsity_head), ("--sparsity-block", args.sparsity_block))
    given = [flag for flag, value in (("--w-rank", args.w_rank), ("--u-rank", args.u_rank),
                                      *sparsity,
                                      ("--gate-nonlinearity", args.gate_nonlinearity),
                                      ("--update-nonlinearity", args.update_nonlinearity))
             if value is not None]
    if given:
        raise KilomlError(f"{', '.join(given)} apply to fastgrnn and fastrnn, not {args.model}")


def _sharnn_fast(args) -> bool:
    """A ShaRNN with a FastGRNN/FastRNN cell at either level (what the FastGRNN options and
    compression act on)."""
    d = SHARNN_DEFAULTS
    return args.model == "sharnn" and any(
        _option(getattr(args, name), d[name]) in ("fastgrnn", "fastrnn")
        for name in ("cell", "upper_cell"))


def _option(value, default):
    return default if value is None else value


def _target_sparsity(values: list[str] | None) -> dict[str, float]:
    """``--target-sparsity`` as ``{"total": f}`` or ``{group: f, ...}``; one-line errors."""
    targets: dict[str, float] = {}
    for text in values or []:
        key, _, number = text.rpartition("=")
        try:
            value = float(number)
        except ValueError:
            raise KilomlError(f"--target-sparsity {text}: expected a fraction of zeros such as "
                              "0.9, or GROUP=FRACTION such as W=0.9") from None
        if not (math.isfinite(value) and 0.0 < value < 1.0):
            raise KilomlError(f"--target-sparsity {text}: the fraction of zeros must be in "
                              f"(0, 1), e.g. 0.9")
        targets[key or "total"] = value
    if "total" in targets and len(values) > 1:
        raise KilomlError("--target-sparsity takes one fraction for all matrices or one per "
                          "group (W=0.9 U=0.8), not both")
    return targets


def _check_compress_options(args) -> None:
    """STR's options: for a family with sparsity groups, with a target and without IHT's
    kept fractions."""
    if args.learn_rank and args.compress != "str":
        raise KilomlError("--learn-rank is low-rank STR; add --compress str and "
                          "--target-sparsity (e.g. 0.9)")
    if args.compress == "str" and args.model == "cascade":
        raise KilomlError("a cascade trains its tiers with hard thresholding "
                          "(--sparsity-w/-u/-head); drop --compress str")
    if args.compress != "str":
        if args.target_sparsity is not None:
            raise KilomlError("--target-sparsity sets STR's target; add --compress str (hard "
                              "thresholding takes --sparsity-w/-u/-head, the fraction kept)")
        return
    if args.model not in ("fastgrnn", "fastrnn", "emi-fastgrnn") and not _sharnn_fast(args):
        raise KilomlError(f"--compress str needs a family with sparsity groups (fastgrnn, "
                          f"fastrnn, emi-fastgrnn, sharnn with a fastgrnn or fastrnn cell); "
                          f"{args.model} has none")
    given = [flag for flag, value in (("--sparsity-w", args.sparsity_w),
                                      ("--sparsity-u", args.sparsity_u),
                                      ("--sparsity-head", args.sparsity_head),
                                      ("--sparsity-block", args.sparsity_block))
             if value is not None]
    if given:
        raise KilomlError(f"--compress str learns how much of each matrix to keep; drop "
                          f"{', '.join(given)} and give the fraction of zeros with "
                          "--target-sparsity (e.g. 0.9, or W=0.9 U=0.8 per group)")
    if args.target_sparsity is None:
        raise KilomlError("--compress str needs --target-sparsity: the fraction of zeros, "
                          "e.g. 0.9 over all matrices, or W=0.9 U=0.8 per group")
    _target_sparsity(args.target_sparsity)
    if args.learn_rank:
        if args.model not in ("fastgrnn", "fastrnn"):
            raise KilomlError(f"--learn-rank learns the ranks of a fastgrnn or fastrnn's W and "
                              f"U; {args.model} is not one (use --target-sparsity alone)")
        given = [flag for flag, value in (("--w-rank", args.w_rank), ("--u-rank", args.u_rank))
                 if value is not None]
        if given:
            raise KilomlError(f"--learn-rank learns the ranks of W and U from the full "
                              f"matrices; drop {', '.join(given)}")
        if args.bidirectional:
            raise KilomlError("--learn-rank takes one direction; drop --bidirectional")


def _check_family_options(args) -> None:
    """Options of another family are an error, not silently ignored."""
    _check_compress_options(args)
    _fast_only(args)
    owners = {"recurrent models": RECURRENT_ONLY, "dscnn": DSCNN_OPTIONS,
              "protonn and bonsai": VECTOR_OPTIONS, "protonn": PROTONN_OPTIONS,
              "bonsai": BONSAI_OPTIONS, "sharnn": SHARNN_OPTIONS,
              "emi-fastgrnn": EMI_OPTIONS, "sharnn and cascade": UPPER_OPTIONS,
              "cascade": CASCADE_OPTIONS,
              "mobilenetv2 and rnnpool-mobilenetv2": VISION_OPTIONS,
              "rnnpool-mobilenetv2": RNNPOOL_OPTIONS}
    own = {"dscnn": ("dscnn",), "protonn": ("protonn", "protonn and bonsai"),
           "mobilenetv2": ("mobilenetv2 and rnnpool-mobilenetv2",),
           "rnnpool-mobilenetv2": ("mobilenetv2 and rnnpool-mobilenetv2", "rnnpool-mobilenetv2"),
           "bonsai": ("bonsai", "protonn and bonsai"),
           "sharnn": ("sharnn", "recurrent models", "sharnn and cascade"),
           "cascade": ("cascade", "sharnn and cascade", "recurrent models"),
           "emi-fastgrnn": ("emi-fastgrnn", "recurrent models")}.get(args.model,
                                                                     ("recurrent models",))
    if args.model in ("sharnn", "emi-fastgrnn"):
        given = [flag for flag, value in (("--frame-stack", args.frame_stack),
                                          ("--bidirectional", args.bidirectional),
                                          ("--readout", args.readout if args.model ==
                                           "emi-fastgrnn" else None))
                 if value is not None]
        if given:
            raise KilomlError(f"{', '.join(given)} apply to the single-level recurrent "
                              f"models, not {args.model}")
    if args.model == "cascade":
        given = [flag for flag, value in (("--hidden-size", args.hidden_size),
                                          ("--bidirectional", args.bidirectional))
                 if value is not None]
        if given:
            raise KilomlError(f"{', '.join(given)} do not apply to a cascade; its tiers' sizes "
                              "are --lower-hidden-size and --upper-hidden-size")
    for owner, options in owners.items():
        given = [flag for flag, name in options if getattr(args, name) is not None]
        if given and owner not in own:
            raise KilomlError(f"{', '.join(given)} apply to {owner}, not {args.model}")


def _dscnn_config(args, data):
    from kiloml.nn.dscnn import DSCNNConfig

    return DSCNNConfig(kind="dscnn", input_size=data.num_features,
                       num_classes=data.num_classes,
                       **{name: _option(getattr(args, name), DEFAULTS[name])
                          for _, name in DSCNN_OPTIONS}).validate()


def _vision_config(args, data):
    from kiloml.models import get_family
    from kiloml.train.fit import check_input_kind

    check_input_kind(args.model, data)
    c, h, w = data.info["image_shape"]
    options = {name: _option(getattr(args, name), VISION_DEFAULTS[name])
               for _, name in VISION_OPTIONS + (RNNPOOL_OPTIONS if args.model ==
                                                 "rnnpool-mobilenetv2" else ())}
    return get_family(args.model).config(kind=args.model, input_size=w * c,
                                         num_classes=data.num_classes, in_channels=c, height=h,
                                         width=w, **options).validate()


def describe_model(config) -> str:
    """A few words on a model's size for progress lines and plot titles."""
    if config.kind == "mobilenetv2":
        return f"mobilenetv2 w={config.width_mult:g} {config.height}x{config.width}"
    if config.kind == "rnnpool-mobilenetv2":
        return (f"rnnpool-mobilenetv2 w={config.width_mult:g} {config.height}x{config.width} "
                f"patch {config.rnnpool_patch}/{config.rnnpool_stride} h={config.rnnpool_hidden}")
    if config.kind == "dscnn":
        return f"dscnn c={config.channels} blocks={config.blocks}"
    if config.kind == "protonn":
        return f"protonn d={config.projection_dim} m={config.prototypes}"
    if config.kind == "bonsai":
        return f"bonsai d={config.projection_dim} depth={config.depth}"
    if config.kind == "emi-fastgrnn":
        return (f"emi-fastgrnn h={config.hidden_size} instances {config.instance_width}/"
                f"{config.instance_stride}")
    if config.kind == "cascade":
        return (f"cascade fastgrnn h={config.lower_hidden_size} -> fastgrnn "
                f"h={config.upper_hidden_size}")
    if config.kind == "sharnn":
        return (f"sharnn k={config.brick_size} {config.cell} h={config.hidden_size} / "
                f"{config.upper_cell} h={config.upper_hidden_size}")
    return f"{config.kind} h={config.hidden_size}"


def _model_config(args, data, recipe):
    from kiloml.nn.classifier import ModelConfig

    _check_family_options(args)
    if args.model == "dscnn":
        return _dscnn_config(args, data)
    if args.model in VISION_FAMILIES:
        return _vision_config(args, data)
    if args.model == "protonn":
        from kiloml.nn.protonn import ProtoNNConfig

        return ProtoNNConfig(kind="protonn", input_size=data.num_features,
                             num_classes=data.num_classes,
                             **{name: _option(getattr(args, name), PROTONN_DEFAULTS[name])
                                for _, name in VECTOR_OPTIONS + PROTONN_OPTIONS}).validate()
    if args.model == "bonsai":
        from kiloml.nn.bonsai import BonsaiConfig

        return BonsaiConfig(kind="bonsai", input_size=data.num_features,
                            num_classes=data.num_classes,
                            **{name: _option(getattr(args, name), BONSAI_DEFAULTS[name])
                               for _, name in VECTOR_OPTIONS + BONSAI_OPTIONS}).validate()
    w_rank = _option(args.w_rank, DEFAULTS["w_rank"]) or None
    u_rank = _option(args.u_rank, DEFAULTS["u_rank"]) or None
    if args.learn_rank:  # learned from the full matrices (the run records the learned ranks)
        w_rank = u_rank = None
    if args.model == "sharnn":
        return _sharnn_config(args, data, recipe, w_rank, u_rank)
    if args.model == "cascade":
        return _cascade_config(args, data, recipe, w_rank, u_rank)
    if args.model == "emi-fastgrnn":
        from kiloml.data.bags import instance_count
        from kiloml.nn.emi import EMIConfig

        config = EMIConfig(kind="emi-fastgrnn", input_size=data.num_features,
                           num_classes=data.num_classes,
                           hidden_size=_option(args.hidden_size, DEFAULTS["hidden_size"]),
                           w_rank=w_rank, u_rank=u_rank,
                           gate_nonlinearity=_option(args.gate_nonlinearity,
                                                     DEFAULTS["gate_nonlinearity"]),
                           update_nonlinearity=_option(args.update_nonlinearity,
                                                       recipe.update_nonlinearity),
                           **{name: _option(getattr(args, name), EMI_DEFAULTS[name])
                              for _, name in EMI_OPTIONS}).validate()
        instance_count(data.steps, config.instance_width, config.instance_stride)
        return config
    fast = args.model in ("fastgrnn", "fastrnn")
    readout = _option(args.readout, recipe.readout if fast else "last")
    return ModelConfig(kind=args.model, input_size=data.num_features,
                       num_classes=data.num_classes,
                       hidden_size=_option(args.hidden_size, DEFAULTS["hidden_size"]),
                       w_rank=w_rank if fast else None, u_rank=u_rank if fast else None,
                       **({"gate_nonlinearity": _option(args.gate_nonlinearity,
                                                        DEFAULTS["gate_nonlinearity"]),
                           "update_nonlinearity": _option(args.update_nonlinearity,
                                                          recipe.update_nonlinearity)}
                          if fast else {}),
                       bidirectional=bool(args.bidirectional), readout=readout,
                       frame_stack=_option(args.frame_stack, recipe.frame_stack)).validate()


def default_brick_size(steps: int) -> int:
    """The largest divisor of ``steps`` not above its square root (ShaRNN's amortised cost per
    window, ``T/k + k`` steps, is smallest at ``k = sqrt(T)``)."""
    return max(k for k in range(1, math.isqrt(steps) + 1) if steps % k == 0)


def _sharnn_config(args, data, recipe, w_rank, u_rank):
    from kiloml.nn.sharnn import ShaRNNConfig

    d = SHARNN_DEFAULTS
    options = {name: _option(getattr(args, name), d[name])
               for _, name in SHARNN_OPTIONS + UPPER_OPTIONS if name in d}
    fast = _sharnn_fast(args)
    nonlinearities = {"gate_nonlinearity": _option(args.gate_nonlinearity,
                                                   DEFAULTS["gate_nonlinearity"]),
                      "update_nonlinearity": _option(args.update_nonlinearity,
                                                     recipe.update_nonlinearity)} if fast else {}
    config = ShaRNNConfig(kind="sharnn", input_size=data.num_features,
                          num_classes=data.num_classes,
                          brick_size=_option(args.brick_size, default_brick_size(data.steps)),
                          hidden_size=_option(args.hidden_size, d["hidden_size"]),
                          w_rank=w_rank if fast else None, u_rank=u_rank if fast else None,
                          readout=_option(args.readout, recipe.readout if fast else "last"),
                          **options, **nonlinearities)
    config.validate().check_steps(data.steps)
    return config


def _cascade_config(args, data, recipe, w_rank, u_rank):
    from kiloml.nn.cascade import CascadeConfig

    d = CASCADE_DEFAULTS
    noise = _option(args.noise_class, d["noise_class"])
    names = [str(n) for n in data.class_names]
    if noise not in names:
        raise KilomlError(f"--noise-class {noise}: {data.name} has no such class (a cascade "
                          f"needs one that means nothing happened); its classes are "
                          f"{', '.join(names)}")
    return CascadeConfig(kind="cascade", input_size=data.num_features,
                         num_classes=data.num_classes, noise_class=names.index(noise),
                         lower_hidden_size=_option(args.lower_hidden_size,
                                                   d["lower_hidden_size"]),
                         upper_hidden_size=_option(args.upper_hidden_size,
                                                   d["upper_hidden_size"]),
                         threshold=args.cascade_threshold, w_rank=w_rank, u_rank=u_rank,
                         gate_nonlinearity=_option(args.gate_nonlinearity,
                                                   DEFAULTS["gate_nonlinearity"]),
                         update_nonlinearity=_option(args.update_nonlinearity,
                                                     recipe.update_nonlinearity),
                         readout=_option(args.readout, recipe.readout),
                         frame_stack=_option(args.frame_stack, recipe.frame_stack)).validate()


def _train_config(args, budget, recipe):
    from kiloml.train.trainer import TrainConfig

    sparse = args.model in SPARSE_FAMILIES or _sharnn_fast(args)
    iht = sparse and args.compress != "str"
    d = {"protonn": PROTONN_DEFAULTS, "bonsai": BONSAI_DEFAULTS}.get(args.model, DEFAULTS)
    augment = {"augment_scale": _option(args.augment_scale, recipe.augment_scale),
               "augment_noise": _option(args.augment_noise, recipe.augment_noise),
               "augment_rotation": _option(args.augment_rotation, recipe.augment_rotation),
               "augment_crop": _option(args.augment_crop, recipe.augment_crop),
               "augment_flip": recipe.augment_flip}
    if args.no_augment:
        given = [f"--{name.replace('_', '-')}" for name in augment
                 if getattr(args, name, None) is not None]
        if given:
            raise KilomlError(f"--no-augment turns every augmentation off; drop "
                              f"{', '.join(given)}")
        augment = {name: type(value)(0) for name, value in augment.items()}
    return TrainConfig(epochs=budget.epochs, batch_size=budget.batch_size, lr=args.lr,
                       keep_w=_option(args.sparsity_w, d["sparsity_w"]) if iht else 1.0,
                       keep_u=_option(args.sparsity_u, d["sparsity_u"]) if iht else 1.0,
                       keep_head=(_option(args.sparsity_head, d["sparsity_head"])
                                  if iht else 1.0),
                       sparsity_block=_option(args.sparsity_block, 1),
                       compress=args.compress or "iht",
                       target_sparsity=_target_sparsity(args.target_sparsity),
                       learn_rank=bool(args.learn_rank),
                       **augment, patience=args.patience, seed=args.seed).validate()


def _training_defaults(args, data) -> dict:
    """The data-dependent choices of a new run (stored in ``config.json`` under ``defaults``):
    recipe, how the epoch is chosen, and the budget. A DS-CNN reads the whole window, so
    frames are stacked for recurrent models only."""
    from dataclasses import replace

    from kiloml.models import get_family
    from kiloml.train.budget import training_budget
    from kiloml.train.cross_validation import needs_cross_validation
    from kiloml.train.fit import check_input_kind
    from kiloml.train.recipes import choose_recipe

    check_input_kind(args.model, data)
    recipe = choose_recipe(data, None if args.recipe == "auto" else args.recipe,
                           get_family(args.model).input_kind)
    if args.model in ("dscnn", "protonn", "bonsai", "sharnn", "emi-fastgrnn", *VISION_FAMILIES):
        recipe = replace(recipe, frame_stack=1, pad_front=0, frame_stack_reason="")
    staged = args.model in ("emi-fastgrnn", "cascade")
    folds = args.folds if args.folds is not None else (
        FOLDS if needs_cross_validation(data) and not staged else 0)
    if folds and staged:
        raise KilomlError(f"{args.model} chooses its epochs on the validation split; "
                          "--folds must be 0")
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
    console.print(escape(recipe.describe()))
    frame_stack = getattr(model_config, "frame_stack", 1)
    if frame_stack > 1 or recipe.frame_stack_reason:
        stacked = (recipe.frame_stack_reason if frame_stack == recipe.frame_stack
                   else f"--frame-stack {frame_stack}")
        console.print(f"input: {escape(stacked)}")
    console.print(f"budget: {escape(Budget.from_dict(defaults['budget']).describe())}")
    console.print(f"selection: {escape(defaults['selection']['text'])}")


def _run_dir(args) -> Path:
    if getattr(args, "instances_from", None) is not None and args.out is None:
        return Path("runs") / f"{Path(args.instances_from).name}-mi-sharnn"
    return args.out or Path("runs") / f"{Path(args.dataset).stem}-{args.model}"


#: Options that may accompany ``--resume``: they do not change what is trained.
RESUME_OPTIONS = {"command", "out", "resume", "threads", "debug", "data_dir", "bits"}


def _recorded_options(config: dict) -> dict:
    """The value each training option had when the run in ``config`` started."""
    model, train, data = config["model"], config.get("train", {}), config.get("data", {})
    return {
        "dataset": data.get("dataset"), "skip_bad_files": data.get("skip_bad_files", False),
        "train_hop": data.get("train_hop"), "train_speeds": data.get("train_speeds"),
        "model": model.get("kind"), "hidden_size": model.get("hidden_size"),
        "w_rank": model.get("w_rank"), "u_rank": model.get("u_rank"),
        "gate_nonlinearity": model.get("gate_nonlinearity"),
        "update_nonlinearity": model.get("update_nonlinearity"),
        "frame_stack": model.get("frame_stack"), "readout": model.get("readout"),
        "bidirectional": model.get("bidirectional"),
        **{k: model.get(k) for k in ("channels", "blocks", "kernel_size", "stride",
                                     "projection_dim", "prototypes", "gamma", "scale",
                                     "depth", "sigma", "brick_size", "upper_hidden_size",
                                     "cell", "upper_cell", "instance_width",
                                     "instance_stride", "keep_instances", "rounds",
                                     "exit_threshold", "width_mult", "rnnpool_patch",
                                     "rnnpool_stride", "rnnpool_hidden")},
        "sparsity_w": train.get("keep_w"), "sparsity_u": train.get("keep_u"),
        "sparsity_head": train.get("keep_head"),
        "sparsity_block": train.get("sparsity_block", 1),
        "compress": train.get("compress", "iht"),
        "target_sparsity": train.get("target_sparsity", {}),
        "learn_rank": train.get("learn_rank", False),
        **{k: train.get(k) for k in ("epochs", "batch_size", "lr", "augment_scale",
                                     "augment_noise", "augment_rotation", "patience", "seed")},
        "augment_crop": train.get("augment_crop", 0),
        "no_augment": not any(train.get(k) for k in ("augment_scale", "augment_noise",
                                                     "augment_rotation", "augment_crop",
                                                     "augment_flip")),
        "recipe": config.get("defaults", {}).get("recipe", {}).get("kind"),
        "folds": config.get("defaults", {}).get("selection", {}).get("folds"),
    }


def _same_option(dest: str, given, recorded, config: dict) -> bool:
    if dest in ("w_rank", "u_rank"):
        return (given or None) == recorded
    if dest == "train_speeds":
        return recorded is not None and [float(v) for v in given] == list(recorded)
    if dest == "recipe":
        return given in ("auto", recorded)
    if dest == "target_sparsity":
        return _target_sparsity(given) == recorded
    if dest == "dataset" and given != recorded:
        path = config.get("data", {}).get("path")
        return path is not None and os.path.abspath(given) == path
    return given == recorded


def _check_resume_options(args, config: dict, run_dir: Path) -> None:
    """One-line error naming every option given with ``--resume`` that differs from the run."""
    recorded = _recorded_options(config)
    differ = []
    for dest in sorted(getattr(args, "given", set()) - RESUME_OPTIONS):
        flag = "--" + dest.replace("_", "-")
        value = getattr(args, dest)
        if dest not in recorded:
            differ.append(f"{flag} (cannot change)")
        elif not _same_option(dest, value, recorded[dest], config):
            shown = " ".join(map(str, value)) if isinstance(value, list) else value
            differ.append(f"{flag} {shown} (the run: {recorded[dest]})")
    if differ:
        raise KilomlError(f"--resume continues {run_dir} with the settings it started with, but "
                          f"these differ: {'; '.join(differ)}. Drop them, or start a new run "
                          "with another --out")


def _check_data_fits(data, model_config, where: str) -> None:
    """One-line error unless ``data`` has the features and classes the model was built for
    (a vision model: images of its channels and size)."""
    if getattr(model_config, "image_shape", None) is not None:
        from kiloml.train.fit import check_image_shape, check_input_kind

        check_input_kind(model_config.kind, data)
        check_image_shape(model_config, data)
    if (data.num_features != model_config.input_size
            or data.num_classes != model_config.num_classes):
        raise KilomlError(f"{where}: {data.num_features} features / {data.num_classes} classes, "
                          f"but the model expects {model_config.input_size} / "
                          f"{model_config.num_classes}")


def _resume(args, run_dir: Path, stack: ExitStack):
    """Check everything a resumed run needs, then lock its directory; returns
    ``(data, model_config, train_config, model, defaults)``."""
    from dataclasses import replace

    from kiloml.models import config_from_dict
    from kiloml.runs import CHECKPOINT_FILE, CONFIG_FILE, FOLDS_DIR, load_run_data, read_run_config
    from kiloml.train.checkpoint import check_checkpoint_matches
    from kiloml.train.fit import check_frame_stack, new_model
    from kiloml.train.trainer import TrainConfig

    if args.overwrite:
        raise KilomlError("--resume continues a run and --overwrite replaces it; give one")
    check_output_dir(run_dir, RUN_OUTPUT, resume=True)
    config = read_run_config(run_dir)
    if config.get("model", {}).get("kind") == "emi-fastgrnn":
        raise KilomlError(f"{run_dir}: an emi-fastgrnn run cannot be resumed (its rounds "
                          "relabel the data); train it again with --overwrite")
    if config.get("model", {}).get("kind") == "cascade":
        raise KilomlError(f"{run_dir}: a cascade run cannot be resumed (it trains two tiers "
                          "one after the other); train it again with --overwrite")
    _check_resume_options(args, config, run_dir)
    data = load_run_data(config, args.data_dir, windowing=True,
                         hint="; --resume needs the data the run started with")
    model_config = config_from_dict(config["model"])
    _check_data_fits(data, model_config, str(run_dir / CONFIG_FILE))
    check_frame_stack(model_config, data)
    try:
        train_config = TrainConfig(**{k: tuple(v) if k == "phase_fractions" else v
                                      for k, v in config.get("train", {}).items()}).validate()
    except TypeError as e:
        raise KilomlError(f"{run_dir / CONFIG_FILE}: its train section does not fit this "
                          f"kiloml ({e})") from None
    if train_config.learn_rank:  # trained with full matrices; config.json has the learned ranks
        model_config = replace(model_config, w_rank=None, u_rank=None)
    model = new_model(model_config, data, train_config.seed)
    defaults = config.get("defaults")
    checkpoints = [run_dir / CHECKPOINT_FILE]
    if defaults is not None and defaults["selection"]["folds"]:  # each fold has its own
        checkpoints += sorted((run_dir / FOLDS_DIR).glob("checkpoint-*.safetensors"))
    existing = [path for path in checkpoints if path.is_file()]
    for path in existing or checkpoints[:1]:  # none at all: the one-line error of the first
        check_checkpoint_matches(path, model)
    stack.enter_context(claim_output_dir(run_dir, RUN_OUTPUT, resume=True))
    console.print(f"resuming {escape(str(run_dir))} from its last checkpoint")
    return data, model_config, train_config, model, defaults


def _start(args, run_dir: Path, stack: ExitStack):
    """Check every input of a new run, then claim, lock and (with ``--overwrite``) clear its
    directory and write ``config.json``; returns ``(data, model_config, train_config, model,
    defaults)``."""
    from kiloml.data import load_dataset
    from kiloml.data.fingerprint import data_sources, fingerprint
    from kiloml.data.registry import DATASETS
    from kiloml.runs import save_run_config
    from kiloml.train.budget import Budget
    from kiloml.train.fit import check_frame_stack, new_model
    from kiloml.train.guards import check_kept_fractions
    from kiloml.train.recipes import Recipe
    from kiloml.train.trainer import check_str_groups, sparsifiable_parameters

    check_output_dir(run_dir, RUN_OUTPUT, replace=args.overwrite, others=(EXPORT_OUTPUT,))
    _check_family_options(args)
    if args.instances_from is not None:
        emi_config, data = _mi_instances(args)
    else:
        data = load_dataset(args.dataset, args.data_dir, skip_bad_files=args.skip_bad_files,
                            train_hop=args.train_hop, train_speeds=args.train_speeds)
    _report_skipped(data)
    defaults = _training_defaults(args, data)
    recipe, budget = Recipe(**defaults["recipe"]), Budget.from_dict(defaults["budget"])
    if args.frame_stack is None and recipe.pad_front:
        data = data.pad_front(data.steps + recipe.pad_front)
    train_config = _train_config(args, budget, recipe)
    model_config = _model_config(args, data, recipe)
    check_frame_stack(model_config, data)
    model = new_model(model_config, data, train_config.seed)
    check_kept_fractions(sparsifiable_parameters(model), train_config.kept_fractions())
    check_str_groups(sparsifiable_parameters(model), train_config)
    registered = args.dataset in DATASETS
    sources = data_sources(data)
    data_info = {"dataset": data.name if registered else args.dataset,
                 "path": str(sources[0]) if sources else None,
                 "fingerprint": fingerprint(sources),
                 "data_dir": os.path.abspath(args.data_dir) if args.data_dir else None,
                 "skip_bad_files": args.skip_bad_files,
                 "steps": data.steps, "num_features": data.num_features,
                 "class_names": data.class_names,
                 "sizes": {s: len(getattr(data, s)) for s in ("train", "val", "test")}}
    if not registered:  # the user's own data, found again from any directory
        data_info["path"] = os.path.abspath(args.dataset)
    if args.train_hop is not None:
        data_info["train_hop"] = args.train_hop
    if args.train_speeds is not None:
        data_info["train_speeds"] = data.info["train_speeds"]
    if "padded_from" in data.info:  # the run's data is loaded again with the same padding
        data_info["padded_from"] = data.info["padded_from"]
    if "sample_rate" in data.info:  # audio: features come from the log-mel front end
        data_info["sample_rate"] = data.info["sample_rate"]
    stack.enter_context(claim_output_dir(run_dir, RUN_OUTPUT, replace=args.overwrite,
                                         others=(EXPORT_OUTPUT,)))
    if args.instances_from is not None:  # the instances become the run's own .npz
        from kiloml.runs import INSTANCES_FILE
        from kiloml.train.mi_sharnn import write_instances

        path = (run_dir / INSTANCES_FILE).resolve()
        write_instances(data, path)
        data_info.update(dataset=str(path), path=str(path), fingerprint=fingerprint([path]),
                         data_dir=None)
        data_info.pop("sample_rate", None)  # the instances are features, not audio
    save_run_config(run_dir, model_config, data_info, train_config.to_dict(),
                    defaults=defaults)
    if args.instances_from is not None:
        from kiloml.runs import CONFIG_FILE, read_json, write_json
        from kiloml.train.mi_sharnn import mi_section

        config = read_json(run_dir / CONFIG_FILE)
        config["mi"] = mi_section(args.instances_from, emi_config)
        write_json(run_dir / CONFIG_FILE, config)
    return data, model_config, train_config, model, defaults


def _mi_instances(args):
    """``(EMI run's config, relabelled instances)`` for ``--instances-from``; one-line errors
    for another family or options that choose other data."""
    from kiloml.runs import load_run_data
    from kiloml.train.mi_sharnn import load_emi_run, relabelled_instances

    if args.model != "sharnn":
        raise KilomlError(f"--instances-from trains an MI-ShaRNN: use --model sharnn, not "
                          f"{args.model}")
    given = [flag for flag, name in (("--dataset", "dataset"), ("--train-hop", "train_hop"),
                                     ("--train-speeds", "train_speeds"),
                                     ("--skip-bad-files", "skip_bad_files"))
             if name in getattr(args, "given", set())]
    if given:
        raise KilomlError(f"--instances-from trains on the EMI run's data as it was loaded; "
                          f"drop {', '.join(given)}")
    emi_config, emi = load_emi_run(args.instances_from)
    data = load_run_data(emi_config, args.data_dir, windowing=True,
                         hint=f"; --instances-from needs the data {args.instances_from} "
                              "was trained on")
    console.print(f"relabelling the instances of {escape(str(args.instances_from))} "
                  f"({escape(data.name)}) with its model")
    return emi_config, relabelled_instances(emi, data)


def _train(args, stack: ExitStack, reporter=None, test_split: bool = True) -> int:
    """``kiloml train`` holding the run directory's lock in ``stack``; ``reporter`` (a
    ``train.trainer.Reporter``) replaces the progress bars, and without ``test_split`` the test
    split is never looked at (a sweep's trials)."""
    import torch

    from kiloml.progress import RichReporter, summary_table
    from kiloml.runs import CHECKPOINT_FILE, FOLDS_DIR
    from kiloml.train.fit import fit
    from kiloml.train.guards import TrainingDiverged

    torch.set_num_threads(args.threads)
    run_dir = _run_dir(args)
    start = _resume if args.resume else _start
    data, model_config, train_config, model, defaults = start(args, run_dir, stack)
    shape = data.info.get("image_shape")
    held = (f"images {shape[0]}×{shape[1]}×{shape[2]}" if shape and model_config.kind in
            VISION_FAMILIES else f"sequences of {data.steps} steps × {data.num_features} features")
    console.print(f"[bold]{escape(data.name)}[/]: {len(data.train)} train / {len(data.val)} val / "
                  f"{len(data.test)} test {held}, {data.num_classes} classes")
    if defaults is not None:
        _print_defaults(defaults, model_config)
    folds = defaults["selection"]["folds"] if defaults is not None else 0
    phases = ", ".join(f"{p.kind} {p.epochs}" for p in train_config.phases())
    console.print(f"training {describe_model(model_config)} "
                  f"(phases: {phases} epochs) into {escape(str(run_dir))}")
    checkpoint = run_dir / CHECKPOINT_FILE

    def on_fold(fold: int, held_out: int, result) -> None:
        last = result.history[-1]
        console.print(f"fold {fold + 1}/{folds}: {held_out} sequences held out, accuracy at "
                      f"the last epoch {100 * last.val_accuracy:.1f}% "
                      f"({result.train_seconds:.1f} s)")

    try:
        if model_config.kind == "emi-fastgrnn":
            from kiloml.train.emi import train_emi

            outcome = train_emi(data, model_config, train_config, model=model,
                                reporter=reporter or RichReporter(console),
                                test_split=test_split)
        elif model_config.kind == "cascade":
            from kiloml.train.cascade import train_cascade

            outcome = train_cascade(data, model_config, train_config, model=model,
                                    reporter=reporter or RichReporter(console),
                                    test_split=test_split)
        else:
            outcome = fit(data, model_config, train_config, checkpoint_path=checkpoint,
                          resume=args.resume, reporter=reporter or RichReporter(console),
                          model=None if folds else model, folds=folds, on_fold=on_fold,
                          fold_reporter=RichReporter(console, epoch_lines=False,
                                                     label="fold epochs"),
                          test_split=test_split)
    except KeyboardInterrupt:
        console.print(f"\ninterrupted; the last finished epoch is saved. Continue with:\n"
                      f"  kiloml train --out {escape(str(run_dir))} --resume")
        return 130
    except TrainingDiverged as e:
        fold_checkpoints = sorted((run_dir / FOLDS_DIR).glob("checkpoint-*.safetensors"))
        if e.epoch > 0 and checkpoint.is_file():
            kept = f"the last good epoch ({e.epoch}) stays in {checkpoint}"
        elif fold_checkpoints:
            kept = (f"the finished epochs of the cross-validation folds stay in "
                    f"{run_dir / FOLDS_DIR}")
        else:
            kept = "no epoch had finished, so no checkpoint was kept"
        raise KilomlError(f"{e}; {kept}") from None
    if defaults is not None:
        outcome.metrics.update({"recipe": defaults["recipe"], "budget": defaults["budget"]})
    outcome.metrics["frame_stack"] = getattr(model_config, "frame_stack", 1)
    _write_run_outputs(run_dir, data, outcome)
    if test_split:
        console.print(summary_table(outcome.metrics, escape(str(run_dir))))
        if "emi" in outcome.metrics:
            console.print(_emi_summary(outcome.metrics["emi"]))
        if "cascade" in outcome.metrics:
            summary = outcome.metrics["cascade"]
            console.print(f"cascade: threshold {summary['threshold']:g} (from the "
                          f"{summary['threshold_from']}), upper tier called on "
                          f"{100 * summary['val_upper_fraction']:.1f}% of validation and "
                          f"{100 * summary['test_upper_fraction']:.1f}% of test sequences")
    if outcome.metrics.get("warning"):
        console.print(f"[yellow]warning:[/] {escape(outcome.metrics['warning'])}")
    return 0


def _emi_summary(emi: dict) -> str:
    """EMI's bag accuracy and steps read, with early exit and reading every step."""
    lines = [f"EMI: {emi['instances_per_bag']} instances of {emi['steps_per_instance']} steps "
             "per bag; bag accuracy, steps read per instance:"]
    for split in ("val", "test"):
        full, early = emi[f"{split}_full"], emi[f"{split}_early_exit"]
        lines.append(f"  {split}: every step {100 * full['accuracy']:.2f}%, early exit "
                     f"{100 * early['accuracy']:.2f}% reading "
                     f"{early['steps_per_instance']:.1f} of {emi['steps_per_instance']}")
    return "\n".join(lines)


def command_train(args) -> int:
    with ExitStack() as stack:
        return _train(args, stack)


def _report_skipped(data) -> None:
    """Say how many files a ``--skip-bad-files`` load left out, and why."""
    skipped = data.info.get("skipped_files", [])
    if not skipped:
        return
    console.print(f"[yellow]skipped {len(skipped)} bad file(s):[/]")
    for file, reason in skipped[:20]:
        console.print(f"  {escape(str(file))}: {escape(str(reason))}")
    if len(skipped) > 20:
        console.print(f"  ... and {len(skipped) - 20} more")


def _write_run_outputs(run_dir: Path, data, outcome) -> None:
    from dataclasses import asdict

    from kiloml.plots import confusion_matrix, plot_confusion, plot_history
    from kiloml.runs import (
        CONFUSION_PLOT,
        HISTORY_PLOT,
        METRICS_FILE,
        WEIGHTS_FILE,
        save_weights,
        update_run_model_config,
        write_json,
    )

    if (outcome.metrics.get("str", {}).get("ranks")  # low-rank STR: the learned ranks
            or "cascade" in outcome.metrics):  # the cascade's threshold
        update_run_model_config(run_dir, outcome.model.config)
    save_weights(outcome.model, run_dir / WEIGHTS_FILE)
    write_json(run_dir / METRICS_FILE, outcome.metrics)
    history = [asdict(r) for r in outcome.result.history]
    cv = outcome.cross_validation
    if cv is not None:  # the validation curve is the folds' mean held-out accuracy and loss
        for record in history:
            record["val_accuracy"] = cv.mean_accuracy[record["epoch"]]
            record["val_loss"] = cv.mean_loss[record["epoch"]]
    title = f"{data.name}: {describe_model(outcome.model.config)}"
    plot_history(history, run_dir / HISTORY_PLOT, title + (
        f" (validation: mean of {cv.folds} held-out folds)" if cv is not None else ""))
    if outcome.test_predictions is None:  # a sweep's trial: the test split stays unseen
        return
    names = list(data.class_names) + (["noise"] if "emi" in outcome.metrics else [])
    matrix = confusion_matrix(data.test.y, outcome.test_predictions, len(names))
    plot_confusion(matrix, names, run_dir / CONFUSION_PLOT,
                   f"{title}, test accuracy {100 * outcome.metrics['test_accuracy']:.1f}%")


#: ``kiloml eval`` options that only apply with ``--stream``.
STREAM_OPTIONS = (("--hop", "hop"), ("--gap", "gap"), ("--stream-seed", "stream_seed"),
                  ("--bits", "bits"), ("--target", "target"))


def _eval_stream(args, model, data, mi: dict | None = None) -> int:
    """``kiloml eval RUN --stream``: the stream, the decisions and their scores, and the
    instructions per second of stream (see the ``--stream`` help); ``mi``: the run's MI-ShaRNN
    section (``data`` is then its EMI run's dataset)."""
    from kiloml.data.streams import dataset_stream
    from kiloml.deploy.stream_cost import stream_instructions
    from kiloml.train.mi_sharnn import evaluate_mi_stream
    from kiloml.train.stream_decisions import check_streaming, default_hop, evaluate_stream

    steps = data.steps
    hop = args.hop or default_hop(model.config, steps)
    check_streaming(model.config, hop)
    noise = (str(data.class_names[model.config.noise_class]) if model.config.kind == "cascade"
             else CASCADE_DEFAULTS["noise_class"])
    stream = dataset_stream(data, noise, _option(args.stream_seed, 0), _option(args.gap, 1))
    calib, model_steps = data.train.x[:512], steps
    if mi is not None:
        result = evaluate_mi_stream(model, stream, steps, mi)
        model_steps = mi["instance_width"]
    else:
        result = evaluate_stream(model, stream, steps, hop)
    run = escape(str(args.run))
    console.print(f"{run}: a stream of {result['frames']:,} frames ({result['seconds'] / 60:.1f} "
                  f"min at {stream.rate:g} frames/s): {escape(stream.rule)}")
    console.print(f"decisions: {result['decisions']:,}, one every {hop} frames on the last "
                  f"{result['steps']}; accuracy {100 * result['accuracy']:.2f}% (against each "
                  "window's majority class)")
    latency = ("" if result["latency_seconds"] is None
               else f", mean latency {result['latency_seconds']:.2f} s")
    console.print(f"events: {result['detected']} of {result['events']} detected "
                  f"({100 * result['detection_rate']:.1f}%){latency}; false alarms: "
                  f"{result['false_alarms']} of {result['onsets']} onsets, "
                  f"{result['false_alarms_per_hour']:.1f} per hour")
    if mi is not None:
        console.print(f"MI-ShaRNN: each decision the longest run of a class other than noise "
                      f"in the last {result['instances']} instance decisions (the last "
                      f"{mi['instance_width']} frames, one every brick of {hop})")
    if "steps_per_instance" in result:
        console.print(f"early exit: {result['instances']:,} instances read "
                      f"{result['steps_per_instance']:.1f} of {result['instance_width']} steps "
                      "on average (float model)")
    parts = [("model", model, 1.0)]
    if "upper_fraction" in result:
        console.print(f"upper tier called on {100 * result['upper_fraction']:.1f}% of the "
                      "decisions")
        parts = [("lower", model.lower, 1.0), ("upper", model.upper, result["upper_fraction"])]
    target = _option(args.target, "cortex-m4")
    if target == "none":
        return 0
    if mi is not None:  # calibrated on the run's own data, the instances, as kiloml export is
        from kiloml.runs import load_run_data, read_run_config

        calib = load_run_data(read_run_config(args.run), check=False).train.x[:512]
    cost = stream_instructions(parts, calib, stream.frames, model_steps, hop, stream.rate,
                               _option(args.bits, 8), target)
    if "skipped" in cost:
        console.print(f"instructions: skipped, {escape(cost['skipped'])}")
        return 0
    for name, part in cost["parts"].items():
        share = "" if part["share"] == 1 else f" x {100 * part['share']:.1f}% of decisions"
        console.print(f"  {name}: {escape(part['how'])}; {part['per_decision']:,.0f} per "
                      f"decision{share}")
    console.print(f"{target}, int{cost['bits']}: {cost['per_second']:,.0f} instructions per "
                  "second of stream (counted on the C)")
    return 0


def command_eval(args) -> int:
    from kiloml.data import load_dataset
    from kiloml.runs import WEIGHTS_FILE, check_finite_weights, load_run, load_run_data
    from kiloml.train.fit import model_metrics

    given = [flag for flag, name in STREAM_OPTIONS if getattr(args, name) is not None]
    if given and not args.stream:
        raise KilomlError(f"{', '.join(given)} apply to --stream only")
    config, model = load_run(args.run)
    check_finite_weights(model, args.run / WEIGHTS_FILE)
    if args.stream and "mi" in config:  # an MI-ShaRNN: the stream of its EMI run's dataset
        if args.data is not None:
            raise KilomlError(f"{args.run}: an MI-ShaRNN streams its EMI run's dataset "
                              f"({config['mi']['data'].get('dataset')}); drop --data")
        data = load_run_data({"data": config["mi"]["data"]}, args.data_dir,
                             hint="; the MI-ShaRNN's stream is its EMI run's test data")
        return _eval_stream(args, model, data, config["mi"])
    if args.data is not None:
        data = load_dataset(args.data, args.data_dir)
        recorded = config.get("data", {})
        if recorded.get("padded_from") is not None and data.steps == recorded["padded_from"]:
            data = data.pad_front(recorded["steps"])  # as the run's own data was
        where = args.data
    else:
        data = load_run_data(config, args.data_dir,
                             hint="; pass --data to evaluate on it anyway")
        where = config["data"]["dataset"]
    _check_data_fits(data, model.config, where)
    if args.stream:
        return _eval_stream(args, model, data)
    if model.config.kind == "emi-fastgrnn":  # bags of instances, with early exit
        from kiloml.train.emi import evaluate_bags

        early, _ = evaluate_bags(model, data.test, model.config.exit_threshold)
        console.print(f"{escape(str(args.run))}: test bag accuracy "
                      f"{100 * early['accuracy']:.2f}% on {len(data.test)} "
                      f"{escape(data.name)} sequences with early exit at "
                      f"{model.config.exit_threshold:g}, reading "
                      f"{early['steps_per_instance']:.1f} of {model.config.instance_width} "
                      "steps per instance")
        return 0
    if model.config.kind == "cascade":  # the upper tier only where the lower fires
        from kiloml.train.cascade import evaluate_cascade

        result, _ = evaluate_cascade(model, data.test)
        console.print(f"{escape(str(args.run))}: test accuracy "
                      f"{100 * result['accuracy']:.2f}% on {len(data.test)} "
                      f"{escape(data.name)} sequences; upper tier called on "
                      f"{100 * result['upper_fraction']:.1f}% of them (threshold "
                      f"{model.config.threshold:g})")
        return 0
    metrics, _ = model_metrics(model, data)
    console.print(f"{escape(str(args.run))}: test accuracy {100 * metrics['test_accuracy']:.2f}% "
                  f"on {len(data.test)} {escape(data.name)} sequences; model size "
                  f"{metrics['model_size_bytes']:,} B (float32)")
    return 0


def command_export(args) -> int:
    """``kiloml export`` (:func:`kiloml.deploy.commands.run_export`)."""
    return run_export(args)


def _metric(metrics, key: str) -> float | None:
    """``metrics[key]`` if it is a finite number, else ``None``."""
    value = metrics.get(key) if isinstance(metrics, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return value


def command_info(args) -> int:
    from kiloml.compress.size import model_storage
    from kiloml.runs import METRICS_FILE, load_run, read_json

    config, model = load_run(args.run)
    console.print_json(json.dumps({"model": config["model"], "train": config.get("train")}))
    metrics_path = args.run / METRICS_FILE
    invalid = []
    if metrics_path.is_file():
        metrics = read_json(metrics_path)
        values = {k: _metric(metrics, k) for k in ("test_accuracy", "model_size_bytes",
                                                   "macs_per_inference")}
        invalid = [k for k, v in values.items() if v is None]
        parts = []
        if values["test_accuracy"] is not None:
            parts.append(f"test accuracy {100 * values['test_accuracy']:.2f}%")
        if values["model_size_bytes"] is not None:
            parts.append(f"{values['model_size_bytes']:,.0f} B float32")
        if values["macs_per_inference"] is not None:
            parts.append(f"{values['macs_per_inference']:,.0f} MACs per inference")
        if parts:
            console.print(", ".join(parts))
        _print_learned_budgets(metrics.get("str") if isinstance(metrics, dict) else None)
    table = Table(title="storage as deployed (float32)")
    for col in ("tensor", "shape", "nonzeros", "format", "bytes"):
        table.add_column(col, justify="left" if col in ("tensor", "format") else "right")
    storage = model_storage(model)
    for t in storage:
        table.add_row(t.name, "×".join(map(str, t.shape)), str(t.nonzeros), t.format,
                      f"{t.bytes:,}")
    table.add_row("total", "", "", "", f"{sum(t.bytes for t in storage):,}")
    console.print(table)
    if hasattr(model.config, "image_shape"):
        _print_schedules(model)
    if invalid:
        raise KilomlError(f"{metrics_path}: {', '.join(invalid)} missing or not a number "
                          "(the rest is shown above)")
    return 0


def _print_schedules(model) -> None:
    """The planned peak RAM (arena), MACs and stored constants of an image model's int8
    export under each applicable schedule (``kiloml info``); shapes and weights only, so no
    data is read."""
    from kiloml.ir.lower import lower_model
    from kiloml.ir.quantize import quantize_graph
    from kiloml.ir.schedule_choice import default_schedule, plan_schedules

    graph = quantize_graph(lower_model(model, model.config.height), {}, 8)
    planned = plan_schedules(graph)
    default = default_schedule(planned)
    table = Table(title="int8 export schedules (kiloml export --schedule; planned by the arena "
                        "planner: the logits and the stack come on top)")
    for col in ("schedule", "planned peak RAM B", "MACs", "constants B", "tiled stages"):
        table.add_column(col, justify="left" if col in ("schedule", "tiled stages") else "right")
    for kind, (scheduled, arena) in planned.items():
        stages = scheduled.meta.get("schedule", {}).get("stages", [])
        table.add_row(kind + (" (default)" if kind == default else ""), f"{arena:,}",
                      f"{scheduled.macs():,}", f"{scheduled.flash_bytes():,}",
                      "; ".join(f"nodes {st['first']}-{st['first'] + st['nodes'] - 1} on "
                                f"{st['patch'][0]}x{st['patch'][1]} tiles" for st in stages)
                      or "-")
    console.print(table)


def _print_learned_budgets(record) -> None:
    """STR's learned budgets from ``metrics.json`` (``kiloml info``)."""
    if not isinstance(record, dict) or not isinstance(record.get("kept"), dict):
        return
    targets = ", ".join(f"{k} {100 * v:.1f}%" for k, v in record.get("targets", {}).items())
    reached = ", ".join(f"{k} {100 * v:.1f}%" for k, v in record.get("reached", {}).items())
    console.print(f"STR: sparsity target {escape(targets)}, reached {escape(reached)}")
    title = "budgets learned by STR (kept after the STR phase"
    table = Table(title=title + ("; a matrix of rank r keeps r·(rows+cols) values)"
                                 if record.get("ranks") else ")"))
    for col in ("matrix", "kept", "threshold"):
        table.add_column(col, justify="left" if col == "matrix" else "right")
    thresholds = record.get("thresholds", {})
    ranks = record.get("ranks") if isinstance(record.get("ranks"), dict) else {}
    for name, kept in record["kept"].items():
        threshold = thresholds.get(name)
        rank = f" (rank {ranks[name]})" if name in ranks else ""
        table.add_row(escape(f"{name}{rank}"), f"{100 * kept:.1f}%",
                      "" if threshold is None else f"{threshold:.4g}")
    for group, kept in record.get("kept_by_group", {}).items():
        table.add_row(f"group {escape(str(group))}", f"{100 * kept:.1f}%", "")
    console.print(table)


def command_datasets(args) -> int:
    from kiloml.data.registry import DATASETS, dataset_location

    table = Table(title="datasets")
    for col in ("name", "description", "looks in", "present"):
        table.add_column(col)
    for name, (_, description) in DATASETS.items():
        where = dataset_location(name)
        present = where is not None and Path(where).exists()
        table.add_row(name, description, escape(str(where or "-")),
                      "[green]yes[/]" if present else "[red]no[/]")
    console.print(table)
    console.print("Your own data: --dataset FILE.npz (X_train, y_train, X_test, y_test), a .ts "
                  "pair NAME_TRAIN.ts/NAME_TEST.ts (either file or NAME), or a folder of WAVs in "
                  "one sub-folder per label. Data root: $KILOML_DATA or ./data.")
    return 0


def command_demo(args) -> int:
    """Train, then export to ``RUN/c`` and verify (the README's main job), holding the run
    directory's lock throughout."""
    from kiloml.runs import DEMO_EXPORT_DIR

    if not FAMILIES[args.model].deploys:
        raise KilomlError(f"{args.model} has no integer export yet; train it with kiloml train")
    bits = args.bits
    if args.model in VISION_FAMILIES:  # the image ops are int8 only: checked before training
        if "bits" in getattr(args, "given", set()) and bits != 8:
            raise KilomlError(f"{args.model} is exported with int8 weights and activations; "
                              f"--bits {bits} does not apply (use --bits 8 or leave it out)")
        bits = 8
    with ExitStack() as stack:
        status = _train(args, stack)
        if status != 0:
            return status
        run_dir = _run_dir(args)
        export_dir = run_dir / DEMO_EXPORT_DIR
        console.rule("export")
        status = run_export(argparse.Namespace(run=run_dir, out=export_dir, bits=bits,
                                               target="c", name="kiloml_model", data=None,
                                               data_dir=args.data_dir, overwrite=True))
        if status != 0:
            return status
        console.rule("verify")
        return run_verify(argparse.Namespace(dir=export_dir, targets=",".join(DEFAULT_TARGETS),
                                             require=""))


def train_for_sweep(argv: list[str], run_dir: Path, reporter, resume: bool) -> None:
    """One sweep trial: ``kiloml train ARGV --out RUN_DIR`` (``--resume`` from its checkpoint,
    else ``--overwrite``) reporting to ``reporter``, the test split unseen."""
    parser = build_parser()
    words = ["train", *argv, "--out", str(run_dir), "--resume" if resume else "--overwrite"]
    refused = io.StringIO()
    try:
        with redirect_stderr(refused):
            args = parser.parse_args(words)
    except SystemExit:  # argparse's one line, as a failed trial's error
        raise KilomlError(f"kiloml train {' '.join(argv)}: "
                          f"{refused.getvalue().strip().removeprefix('error: ')}") from None
    args.given = _given_options(parser, words)
    with ExitStack() as stack:
        status = _train(args, stack, reporter=reporter, test_split=False)
    if status != 0:
        raise KilomlError(f"kiloml train stopped with status {status}")


def command_sweep(args) -> int:
    """``kiloml sweep``: check the space and ``--out``, run the trials, then write the
    results, the front's test accuracy and the Pareto plot."""
    from kiloml.outputs import claim_output_dir
    from kiloml.plots import plot_pareto
    from kiloml.sweep.driver import (
        SPACE_COPY,
        SWEEP_OUTPUT,
        absolute_paths,
        import_ray,
        run_trials,
        started_objectives,
        write_sweep_file,
    )
    from kiloml.sweep.instructions import settle_objectives
    from kiloml.sweep.results import (
        evaluate_front,
        export_command,
        mark_front,
        trial_rows,
        write_results,
    )
    from kiloml.sweep.space import load_space

    if args.resume and args.overwrite:
        raise KilomlError("--resume continues a sweep and --overwrite replaces it; give one")
    out = args.out.resolve()
    space = load_space(args.space, build_parser().commands["train"])
    check_output_dir(out, SWEEP_OUTPUT, replace=args.overwrite, resume=args.resume)
    if args.resume and (out / SPACE_COPY).read_text() != args.space.read_text():
        raise KilomlError(f"--resume: {args.space} differs from the space the sweep in {out} "
                          f"started with ({out / SPACE_COPY})")
    import_ray()  # the install hint before anything is written
    absolute_paths(space)
    notes = ["selection on validation accuracy only; test accuracy of the front's runs, "
             "measured after the search"]
    # no ARM toolchain: two objectives; --resume: those the sweep started with
    skipped = settle_objectives(space, started_objectives(out) if args.resume else None)
    if skipped:
        notes.append(skipped)
        console.print(f"[yellow]{escape(skipped)}[/]")
    with claim_output_dir(out, SWEEP_OUTPUT, replace=args.overwrite, resume=args.resume):
        if not args.resume:
            write_sweep_file(out, args.space.read_text(), args.address, args.workers,
                             space.objectives)
        trials = run_trials(space, out, args.address, args.workers, train_for_sweep,
                            args.resume, say=lambda text: console.print(escape(text)))
        unfinished = [t for t in trials if t.status not in ("TERMINATED", "ERROR")]
        if unfinished or len(trials) < space.trials:  # Ctrl-C: Ray Tune saved its state
            console.print(f"interrupted with {space.trials - len(trials) + len(unfinished)} "
                          f"of {space.trials} trials unfinished; the test split stays unseen. "
                          f"Continue with:\n  kiloml sweep {escape(str(args.space))} --out "
                          f"{escape(str(args.out))} --resume")
            return 130
        rows = trial_rows(trials, space, out)
        front = mark_front(rows, space)
        evaluate_front(front)
        for row in front:
            row["export"] = export_command(row, space)
        write_results(rows, space, out, notes)
        done = [r for r in rows if r["status"] == "done"]
        plot_pareto([{**r, "name": r["trial"]} for r in done],
                    [{**r, "name": r["trial"]} for r in front], out / "pareto.png",
                    f"sweep {out.name}: validation accuracy vs deployed bytes (int{space.bits})"
                    + (" and Cortex-M4 instructions; the front is 3-D"
                       if "m4_instructions" in space.objectives else ""),
                    instructions="m4_instructions" in space.objectives)
    _print_sweep(rows, front, space, out)
    return 0


def _short(value) -> str:
    """A sampled value in few characters."""
    if isinstance(value, float):
        return f"{value:.3g}"
    return escape(json.dumps(value)) if isinstance(value, list | bool) else escape(str(value))


def _print_sweep(rows: list[dict], front: list[dict], space, out: Path) -> None:
    budget = space.max_flash is not None or space.max_ram is not None
    table = Table(title=f"sweep {escape(str(out))}: {len(rows)} trials")
    names = [flag.removeprefix("--") for dest, flag in space.flags.items() if dest in space.params]
    m4 = "m4_instructions" in space.objectives
    for col in ("trial", "status", *names, "epochs", "val acc", "bytes",
                *(("flash", "RAM") if budget else ()), *(("M4 instr.",) if m4 else ()),
                "front"):
        table.add_column(col, justify="left" if col in ("trial", "status") else "right")
    for r in rows:
        status = "over budget" if r["status"] == "done" and not r["feasible"] else r["status"]
        cells = [r["trial"], status, *(_short(r.get(k, "-")) for k in space.params)]
        cells += [str(r.get("epochs", "-")),
                  f"{100 * r['val_accuracy']:.1f}%" if "val_accuracy" in r else "-",
                  f"{r['bytes']:,}" if "bytes" in r else "-"]
        if budget:
            cells += [f"{r[k]:,}" if k in r else "-" for k in ("flash_bytes", "ram_bytes")]
        if m4:
            cells.append(f"{r['m4_instructions']:,.0f}" if "m4_instructions" in r else "-")
        table.add_row(*cells, "[bold blue]yes[/]" if r.get("front") else "")
    console.print(table)
    for r in rows:
        if r["status"] == "failed":
            console.print(f"[red]failed[/] {r['trial']}: {escape(r['error'])}")
    if not front:
        console.print("no finished trial within the budget: the front is empty")
    for r in front:
        extra = (f", {r['m4_instructions']:,.0f} Cortex-M4 instructions per inference"
                 if r.get("m4_instructions") is not None else "")
        console.print(f"front {r['trial']}: validation {100 * r['val_accuracy']:.2f}%, test "
                      f"{100 * r['test_accuracy']:.2f}%, {r['bytes']:,} B{extra}\n"
                      f"  {escape(r['export'])}")
    console.print(f"results: {escape(str(out / 'results.csv'))}, results.json, pareto.png")


COMMANDS = {"train": command_train, "demo": command_demo, "eval": command_eval,
            "info": command_info, "export": command_export, "verify": run_verify,
            "datasets": command_datasets, "sweep": command_sweep}


def _given_options(parser: argparse.ArgumentParser, argv: list[str] | None) -> set[str]:
    """The destinations of the options given on the command line (defaults left out): the
    arguments parsed again with every default suppressed."""
    actions = [a for p in (parser, *parser.commands.values()) for a in p._actions]
    defaults = [a.default for a in actions]
    for action in actions:
        action.default = argparse.SUPPRESS
    try:
        return set(vars(parser.parse_args(argv)))
    finally:
        for action, default in zip(actions, defaults, strict=True):
            action.default = default


def error_message(error: BaseException) -> str:
    """One line saying what went wrong: a :class:`KilomlError`'s text, an operating-system
    error's file and reason, or the type and text of anything unexpected (only the first line
    of a longer text)."""
    unexpected = ""
    if isinstance(error, KilomlError):
        message = str(error)
    elif isinstance(error, OSError) and error.strerror:
        names = [str(n) for n in (error.filename, error.filename2) if n is not None]
        message = f"{' -> '.join(names) + ': ' if names else ''}{error.strerror}"
    elif isinstance(error, MemoryError):
        message = "out of memory" + (f" ({error})" if str(error) else "")
    else:
        message = f"{type(error).__name__}: {error}"
        unexpected = " (unexpected: please report it; --debug shows where it happened)"
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    line = lines[0] if lines else type(error).__name__
    if len(lines) > 1:
        line += f" (and {len(lines) - 1} more lines; --debug shows them)"
    return line + unexpected


def main(argv: list[str] | None = None) -> int:
    """Run one ``kiloml`` command; every exception ends as a one-line ``error:`` and exit
    status 1 (130 for Ctrl-C), with the traceback under ``--debug``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    args.given = _given_options(parser, argv)
    debug = getattr(args, "debug", False)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        error_console.print("interrupted")
        return 130
    except Exception as error:  # the one error boundary of every command
        if debug:
            error_console.print(Text(traceback.format_exc().rstrip()))
            if isinstance(error, KilomlError | OSError):
                error_console.print(Text(str(error)))
        error_console.print(Text.assemble(("error: ", "red"), error_message(error)))
        return 1


if __name__ == "__main__":
    sys.exit(main())
