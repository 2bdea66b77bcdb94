"""Forward+backward throughput of kiloml's FastGRNN against torch.nn.GRU / nn.LSTM, measured side
by side in one run and reported as ratios (absolute times on shared machines are noise).

Also times FastGRNN as a plain autograd loop over ``FastGRNNCell`` steps (how EdgeML's PyTorch
layer runs), and EdgeML 0.3.0 itself when ``edgeml-pytorch`` is importable (it is in the benchmarks'
environment, ``make bench-env``), after checking that kiloml and EdgeML give the same outputs for
the same weights.

    python benchmarks/train_speed.py [--input 32 --hidden 64 --steps 100 --batch 128]
    .venv-bench/bin/python benchmarks/train_speed.py      # with EdgeML
"""

import argparse
import json
import time

import torch

from kiloml.nn import FastGRNN
from machine_info import describe


class CellLoop(torch.nn.Module):
    """FastGRNN as a Python loop of autograd ops per step (the EdgeML way)."""

    def __init__(self, layer: FastGRNN):
        super().__init__()
        self.cell = layer.cell

    def forward(self, x):
        h = x.new_zeros(x.shape[0], self.cell.hidden_size)
        outs = []
        for t in range(x.shape[1]):
            h = self.cell(x[:, t], h)
            outs.append(h)
        return torch.stack(outs, 1), h


def edgeml_layer(input_size: int, hidden: int, u_rank: int | None = None):
    """EdgeML 0.3.0's FastGRNN layer, with its CUDA probe disabled, or None if not installed
    (it lives in the benchmarks' own environment: ``make bench-env``)."""
    try:
        import edgeml_pytorch.utils as edgeml_utils

        edgeml_utils.findCUDA = lambda: None
        from edgeml_pytorch.graph.rnn import FastGRNN as EdgeMLFastGRNN
    except ImportError:
        return None
    return EdgeMLFastGRNN(input_size, hidden, batch_first=True, uRank=u_rank)


def edgeml_agreement(ours: FastGRNN, theirs, x: torch.Tensor) -> float:
    """Largest |difference| between kiloml's and EdgeML's outputs ``[B, T, H]`` after copying
    kiloml's weights into EdgeML's cell (both use EdgeML's parameter names and shapes)."""
    with torch.no_grad():
        for name, value in ours.cell.state_dict().items():
            getattr(theirs.cell, name).copy_(value.reshape(getattr(theirs.cell, name).shape))
        return float((ours(x)[0] - theirs(x)).abs().max())


def seconds_per_step(model, x, repeats: int) -> float:
    """Median seconds of one forward+backward pass."""
    times = []
    for i in range(repeats + 2):
        started = time.perf_counter()
        out = model(x)
        out = out[0] if isinstance(out, tuple) else out
        out.sum().backward()
        if i >= 2:  # the first two passes warm up allocators and kernels
            times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per model")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: tiny sizes, few repeats (checks the script, not speed)")
    parser.add_argument("--json", default=None, help="also write the ratios here")
    args = parser.parse_args()
    if args.quick:
        args.input, args.hidden, args.steps, args.batch, args.repeats, args.rounds = \
            4, 8, 10, 8, 1, 1
    torch.manual_seed(0)
    x = torch.randn(args.batch, args.steps, args.input)
    u_rank = max(1, args.hidden // 4)
    fastgrnn = FastGRNN(args.input, args.hidden, batch_first=True)
    low_rank = FastGRNN(args.input, args.hidden, batch_first=True, u_rank=u_rank)
    models = {
        "kiloml FastGRNN (fused)": fastgrnn,
        f"kiloml FastGRNN low-rank U (r={u_rank})": low_rank,
        "FastGRNN as an autograd cell loop": CellLoop(fastgrnn),
        "torch.nn.GRU": torch.nn.GRU(args.input, args.hidden, batch_first=True),
        "torch.nn.LSTM": torch.nn.LSTM(args.input, args.hidden, batch_first=True),
    }
    agreement = {}
    edgeml = edgeml_layer(args.input, args.hidden)
    if edgeml is not None:
        edgeml_low_rank = edgeml_layer(args.input, args.hidden, u_rank)
        models["EdgeML 0.3.0 FastGRNN"] = edgeml
        models[f"EdgeML 0.3.0 FastGRNN low-rank U (r={u_rank})"] = edgeml_low_rank
        probe = x[:4]
        agreement = {"full rank": edgeml_agreement(fastgrnn, edgeml, probe),
                     f"low-rank U (r={u_rank})": edgeml_agreement(low_rank, edgeml_low_rank,
                                                                 probe)}
    best = {name: float("inf") for name in models}
    for _ in range(args.rounds):  # interleave so that load changes hit every model alike
        for name, model in models.items():
            best[name] = min(best[name], seconds_per_step(model, x, args.repeats))
    gru = best["torch.nn.GRU"]
    speedup = {name: gru / seconds for name, seconds in best.items()}
    print(f"forward+backward, input {args.input}, hidden {args.hidden}, {args.steps} steps, "
          f"batch {args.batch}; {describe()}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print("| model | speed vs nn.GRU | speed vs EdgeML |")
    print("|---|---|---|")
    edgeml_seconds = best.get("EdgeML 0.3.0 FastGRNN")
    for name, seconds in best.items():
        vs_edgeml = f"{edgeml_seconds / seconds:.2f}x" if edgeml_seconds else "—"
        print(f"| {name} | {gru / seconds:.2f}x | {vs_edgeml} |")
    # FastGRNN's matrix work is a third of GRU's (2 vs 6 matrix products per step), so 3x is the
    # bound for a speed-up that comes from doing less arithmetic.
    fraction = speedup["kiloml FastGRNN (fused)"] / 3.0
    print(f"\nkiloml FastGRNN reaches {fraction:.0%} of the 3x bound set by its matrix work.")
    if agreement:
        print("kiloml vs EdgeML outputs for the same weights, max |difference|: "
              + ", ".join(f"{k} {v:.1e}" for k, v in agreement.items()))
    else:
        print("EdgeML not importable here (it lives in the benchmarks' environment: "
              "make bench-env)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"sizes": {k: getattr(args, k) for k in ("input", "hidden", "steps",
                                                               "batch")},
                       "speed_vs_gru": speedup, "fraction_of_bound": fraction,
                       "edgeml_max_abs_difference": agreement}, f, indent=1)


if __name__ == "__main__":
    main()
