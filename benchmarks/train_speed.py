"""Forward+backward throughput of kiloml's FastGRNN against torch.nn.GRU / nn.LSTM, measured side
by side in one run and reported as ratios (absolute times on shared machines are noise).

Also times FastGRNN as a plain autograd loop over ``FastGRNNCell`` steps (how EdgeML's PyTorch
layer runs), and EdgeML itself when ``edgeml-pytorch`` is importable in this environment.

    python benchmarks/train_speed.py [--input 32 --hidden 64 --steps 100 --batch 128]
"""

import argparse
import platform
import time

import torch

from kiloml.nn import FastGRNN


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


def edgeml_layer(input_size: int, hidden: int):
    """EdgeML 0.3.0's FastGRNN layer, with its CUDA probe disabled, or None if not installed."""
    try:
        import edgeml_pytorch.utils as edgeml_utils

        edgeml_utils.findCUDA = lambda: None
        from edgeml_pytorch.graph.rnn import FastGRNN as EdgeMLFastGRNN
    except ImportError:
        return None
    return EdgeMLFastGRNN(input_size, hidden, batch_first=True)


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
    args = parser.parse_args()
    torch.manual_seed(0)
    x = torch.randn(args.batch, args.steps, args.input)
    fastgrnn = FastGRNN(args.input, args.hidden, batch_first=True)
    models = {
        "kiloml FastGRNN (fused)": fastgrnn,
        "kiloml FastGRNN low-rank U (r=16)": FastGRNN(args.input, args.hidden, batch_first=True,
                                                      u_rank=16),
        "FastGRNN as an autograd cell loop": CellLoop(fastgrnn),
        "torch.nn.GRU": torch.nn.GRU(args.input, args.hidden, batch_first=True),
        "torch.nn.LSTM": torch.nn.LSTM(args.input, args.hidden, batch_first=True),
    }
    edgeml = edgeml_layer(args.input, args.hidden)
    if edgeml is not None:
        models["EdgeML 0.3.0 FastGRNN"] = edgeml
    best = {name: float("inf") for name in models}
    for _ in range(args.rounds):  # interleave so that load changes hit every model alike
        for name, model in models.items():
            best[name] = min(best[name], seconds_per_step(model, x, args.repeats))
    gru = best["torch.nn.GRU"]
    print(f"forward+backward, input {args.input}, hidden {args.hidden}, {args.steps} steps, "
          f"batch {args.batch}; {platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"{'model':40s} {'speed vs nn.GRU':>16s}")
    for name, seconds in best.items():
        print(f"{name:40s} {gru / seconds:15.2f}x")


if __name__ == "__main__":
    main()
