"""Keyword-spotting footprint: a GRU through TensorFlow Lite Micro (int8) next to kiloml's FastGRNN
in integer C on Cortex-M4, on the same features and test split.

The GRU is a kiloml run (``kiloml train --model gru``, so both models see the same data, Trainer
and epochs); its weights go into a Keras ``GRU(unroll=True, reset_after=True)`` (the unrolled
form is what the TFLite converter quantizes), which is converted to a fully int8 ``.tflite`` with
the training split as representative data. PyPI's ``tflite-micro`` interpreter then runs every test
sequence, giving the int8 accuracy, and reports the arena it needed. kiloml's side is read from a
FastGRNN run that ``kiloml demo``/``kiloml verify`` checked on the emulated Cortex-M4.

Needs the benchmarks' environment (TensorFlow and tflite-micro are never kiloml dependencies):

    make bench-env
    .venv/bin/kiloml train --dataset speech-commands-12 --data-dir ../shared/data/speech_commands \\
        --model gru --hidden-size 64 --out runs/speech-gru64
    .venv-bench/bin/python benchmarks/footprint_vs_tflm.py --gru-run runs/speech-gru64 \\
        --fastgrnn-run runs/speech-commands-12       # several runs may follow each option
"""

import argparse
import contextlib
import io
import json
import os
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from kiloml.data import load_dataset  # noqa: E402
from kiloml.errors import KilomlError  # noqa: E402
from kiloml.runs import load_run, read_json  # noqa: E402
from machine_info import describe  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def keras_gru(model, steps: int):
    """A Keras model computing ``model`` (a kiloml ``gru`` classifier) on normalised features
    ``[1, steps, F]``: PyTorch's gate order (r, z, n) becomes Keras' (z, r, h)."""
    import keras

    rnn, head = model.rnn, model.head
    hidden, features = rnn.hidden_size, rnn.input_size

    def gates(w):  # [3H, ...] in (r, z, n) order -> (z, r, n)
        r, z, n = np.split(w.detach().numpy(), 3, axis=0)
        return np.concatenate([z, r, n], axis=0)

    inputs = keras.Input(shape=(steps, features), batch_size=1, name="features")
    gru = keras.layers.GRU(hidden, unroll=True, reset_after=True, name="gru")
    dense = keras.layers.Dense(head.out_features, name="head")
    out = dense(gru(inputs))
    k = keras.Model(inputs, out)
    gru.set_weights([gates(rnn.weight_ih_l0).T, gates(rnn.weight_hh_l0).T,
                     np.stack([gates(rnn.bias_ih_l0), gates(rnn.bias_hh_l0)])])
    dense.set_weights([head.weight.detach().numpy().T, head.bias.detach().numpy()])
    return k


def to_int8_tflite(keras_model, representative: np.ndarray) -> bytes:
    """Full-integer (int8 weights and activations, int8 input/output) TFLite flatbuffer."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x[None].astype(np.float32)]
                                                for x in representative)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def op_counts(tflite: bytes) -> dict[str, int]:
    """Operator name -> how many times the model's graph uses it."""
    import tensorflow as tf

    with tempfile.NamedTemporaryFile(suffix=".tflite") as f:
        f.write(tflite)
        f.flush()
        text = io.StringIO()
        with contextlib.redirect_stdout(text):
            tf.lite.experimental.Analyzer.analyze(model_path=f.name)
    counts: dict[str, int] = {}
    for name in re.findall(r"Op#\d+ (\w+)\(", text.getvalue()):
        counts[name] = counts.get(name, 0) + 1
    return counts


@contextlib.contextmanager
def captured_output():
    """Capture what C++ code writes to file descriptors 1 and 2 (tflite-micro's reports)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        for fd in saved:
            os.dup2(tmp.fileno(), fd)
        box = {}
        try:
            yield box
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            tmp.seek(0)
            box["text"] = tmp.read().decode(errors="replace")


def tflm_run(tflite: bytes, x: np.ndarray, arena_size: int) -> tuple[np.ndarray, int, str]:
    """Predicted classes of every sequence ``x`` ``[N, T, F]`` (normalised floats) from the TFLM
    interpreter, the arena bytes it used and its allocation report."""
    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(tflite, arena_size=arena_size)
    detail = interpreter.get_input_details(0)
    scale, zero = detail["quantization_parameters"]["scales"][0], \
        detail["quantization_parameters"]["zero_points"][0]
    predictions = []
    for seq in x:
        q = np.clip(np.round(seq / scale + zero), -128, 127).astype(np.int8)[None]
        interpreter.set_input(q, 0)
        interpreter.invoke()
        predictions.append(int(np.argmax(interpreter.get_output(0))))
    with captured_output() as box:
        interpreter.print_allocations()
    used = re.search(r"Arena allocation total (\d+) bytes", box["text"])
    if used is None:
        raise RuntimeError(f"no arena size in tflite-micro's report:\n{box['text'][:2000]}")
    return np.array(predictions), int(used.group(1)), box["text"]


def stripped(tflite: bytes) -> bytes:
    """The flatbuffer without tensor and signature names (TensorFlow's own ``strip_strings``),
    the smallest form TFLM can run."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(tflite)
    flatbuffer_utils.strip_strings(model)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def tflm_side(run: Path, data, test_x: np.ndarray, test_y: np.ndarray, arena_size: int) -> dict:
    """Convert one kiloml GRU run and measure it in the TFLM interpreter."""
    import torch

    config, gru = load_run(run)
    if config["model"]["kind"] != "gru":
        raise KilomlError(f"{run} is a {config['model']['kind']} run, not a gru one")
    mean, std = gru.input_mean.numpy(), gru.input_std.numpy()

    def normalise(x):
        return ((x - mean) / std).astype(np.float32)

    k = keras_gru(gru, data.steps)
    with torch.no_grad():
        with_torch = gru(torch.from_numpy(test_x[:8])).numpy()
    with_keras = k.predict(normalise(test_x[:8]), batch_size=1, verbose=0)
    rng = np.random.default_rng(0)
    representative = normalise(data.train.x[rng.permutation(len(data.train.x))[:300]])
    tflite = to_int8_tflite(k, representative)
    small = stripped(tflite)
    predictions, arena, report = tflm_run(small, normalise(test_x), arena_size)
    input_tensor = data.steps * data.num_features
    return {
        "model": f"nn.GRU h{gru.rnn.hidden_size} → Keras GRU(unroll=True) → int8 .tflite",
        "hidden_size": gru.rnn.hidden_size,
        "float_accuracy": json.loads((run / "metrics.json").read_text())["test_accuracy"],
        "int8_accuracy": float(np.mean(predictions == test_y)),
        "keras_vs_torch_max_abs_logit_difference": float(np.abs(with_torch - with_keras).max()),
        "weight_bytes_int8": sum(p.numel() for n, p in gru.named_parameters()
                                 if "bias" not in n),
        "tflite_bytes": len(tflite),
        "tflite_bytes_stripped": len(small),
        "arena_bytes": arena,
        "arena_bytes_without_input": arena - input_tensor,
        "operators": op_counts(tflite),
        "allocations": report.strip().splitlines(),
    }


def kiloml_side(run: Path, data) -> dict:
    """What ``kiloml demo``/``verify`` measured on the emulated Cortex-M4."""
    verify = read_json(run / "c" / "verify.json")
    m4 = verify["targets"]["cortex-m4"]
    export = read_json(run / "c" / "export.json")
    return {
        "model": f"FastGRNN h{export['hidden_size']}, U rank {export['u_rank']}, "
                 f"{export['readout']} readout, int{export['bits']}",
        "float_accuracy": verify["float_accuracy"],
        "m4_accuracy": m4["accuracy"],
        "exact_match_on_m4": m4["exact_match"],
        "weight_bytes": export["weight_flash_bytes"],
        "flash_bytes": m4["flash_bytes"],
        "ram_bytes": m4["ram_bytes"],
        "input_buffer_bytes": 2 * data.steps * data.num_features,
        "instructions_per_inference": m4["instructions_per_inference"],
    }


def markdown(result: dict) -> str:
    lines = ["| model | accuracy (%) on the device's arithmetic | flash: model bytes | "
             "RAM bytes | RAM incl. the input features |", "|---|---|---|---|---|"]
    for k in result["kiloml"]:
        lines.append(f"| kiloml {k['model']} (Cortex-M4, bit-exact) | {100 * k['m4_accuracy']:.2f} "
                     f"| {k['weight_bytes']:,} (+ {k['flash_bytes'] - k['weight_bytes']:,} code) "
                     f"| {k['ram_bytes']:,} | {k['ram_bytes'] + k['input_buffer_bytes']:,} |")
    for t in result["tflm"]:
        lines.append(f"| TFLM {t['model']} | {100 * t['int8_accuracy']:.2f} | "
                     f"{t['tflite_bytes_stripped']:,} (names stripped; "
                     f"{t['tflite_bytes']:,} as converted; + interpreter code) | "
                     f"{t['arena_bytes_without_input']:,} | {t['arena_bytes']:,} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gru-run", type=Path, nargs="+", required=True,
                        help="kiloml runs of --model gru on the keyword-spotting data")
    parser.add_argument("--fastgrnn-run", type=Path, nargs="+", required=True,
                        help="FastGRNN runs exported and verified on Cortex-M4 (kiloml demo)")
    parser.add_argument("--data-dir", type=Path,
                        default=ROOT.parent / "shared" / "data" / "speech_commands")
    parser.add_argument("--arena-size", type=int, default=4 * 1024 * 1024,
                        help="arena offered to TFLM; it reports how much it used")
    parser.add_argument("--limit", type=int, default=None,
                        help="score only the first N test sequences (a smoke run)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "tflm.json")
    args = parser.parse_args()
    try:
        import tensorflow  # noqa: F401
        import tflite_micro  # noqa: F401
    except ImportError:
        print("footprint_vs_tflm: needs TensorFlow and tflite-micro, which live in the benchmarks' "
              "environment: make bench-env, then run it with .venv-bench/bin/python",
              file=sys.stderr)
        return 2
    try:
        return measure(args)
    except KilomlError as e:
        print(f"footprint_vs_tflm: {e}", file=sys.stderr)
        return 2


def measure(args) -> int:
    config = read_json(args.gru_run[0] / "config.json")
    data = load_dataset(config["data"]["dataset"], args.data_dir)
    test_x, test_y = data.test.x[:args.limit], data.test.y[:args.limit]
    result = {
        "machine": describe(),
        "dataset": data.name, "test_sequences": int(len(test_y)),
        "kiloml": [kiloml_side(run, data) for run in args.fastgrnn_run],
        "tflm": [tflm_side(run, data, test_x, test_y, args.arena_size) for run in args.gru_run],
    }
    table = markdown(result)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
