"""SPACE.toml is checked against `kiloml train`'s own parser: every mistake is one line."""

import pytest

from kiloml.cli import build_parser, main
from kiloml.errors import KilomlError
from kiloml.sweep.space import Choice, Range, load_space
from tests.cli.cli_helpers import error_line

GOOD = """
[train]
dataset = "data.npz"
epochs = 3
bidirectional = false

[space]
hidden-size = [4, 8]
sparsity_w = { range = [0.3, 1.0] }
lr = { log-range = [0.003, 0.03] }
u-rank = { range = [2, 6] }
train-speeds = [[1.0], [0.75, 1.0, 1.333]]

[search]
trials = 5
objectives = ["val_accuracy", "bytes", "m4_instructions"]
bits = 8

[constraints]
max-flash = 4096
max-ram = 1024

[asha]
grace-period = 1
reduction-factor = 3
"""


def load(tmp_path, text):
    path = tmp_path / "space.toml"
    path.write_text(text)
    return load_space(path, build_parser().commands["train"])


def test_a_space_is_parsed_into_options_of_kiloml_train(tmp_path):
    space = load(tmp_path, GOOD)
    assert space.params["hidden_size"] == Choice(("4", "8"))
    assert space.params["sparsity_w"] == Range(0.3, 1.0)
    assert space.params["lr"] == Range(0.003, 0.03, log=True)
    assert space.params["u_rank"].integer and not space.params["lr"].integer
    assert (space.trials, space.bits, space.max_flash, space.max_ram) == (5, 8, 4096, 1024)
    assert space.objectives == ("val_accuracy", "bytes", "m4_instructions")
    assert space.asha == {"grace_period": 1, "reduction_factor": 3}
    argv = space.argv({"hidden_size": 8, "sparsity_w": 0.5, "lr": 0.01, "u_rank": 3,
                       "train_speeds": [0.75, 1.0]})
    assert argv == ["--dataset", "data.npz", "--epochs", "3", "--hidden-size", "8",
                    "--sparsity-w", "0.5", "--lr", "0.01", "--u-rank", "3",
                    "--train-speeds", "0.75", "1.0"]
    # the words parse as `kiloml train` arguments
    args = build_parser().parse_args(["train", *argv])
    assert (args.hidden_size, args.train_speeds, args.bidirectional) == (8, [0.75, 1.0], None)


@pytest.mark.parametrize("text, message", [
    ("[space]\nhidden-sise = [4, 8]", "[space] hidden-sise: not an option of `kiloml train`"),
    ("[space]\nsparsity-w = { range = [0.8, 0.8] }", "empty range [0.8, 0.8]"),
    ("[space]\nlr = { log-range = [0.03, 0.003] }", "empty range [0.03, 0.003]"),
    ("[space]\nhidden-size = []", "empty list of choices"),
    ("[space]\nsparsity-w = { range = [0.5, 1.5] }", "--sparsity-w 1.5: expected a fraction"),
    ("[space]\nmodel = [\"fastgrnn\", \"rnn\"]", "--model rnn: choose from"),
    ("[space]\nout = [\"a\", \"b\"]", "the sweep sets --out itself"),
    ("[space]\nlr = { log-range = [0, 0.1] }", "a log-range needs LOW > 0"),
    ("[space]\nlr = { between = [0, 0.1] }", "unknown kind 'between'"),
    ("[train]\nepochs = 3", "[space] is empty"),
    ("[space]\nlr = [0.01]\n[search]\nobjectives = [\"test_accuracy\", \"bytes\"]",
     "the test split is never searched on"),
    ("[space]\nlr = [0.01]\n[search]\nobjectives = [\"bytes\"]", "val_accuracy and bytes"),
    ("[space]\nlr = [0.01]\n[constraints]\nmax-flash = 0", "expected a whole number >= 1"),
    ("[space]\nlr = [0.01]\n[spaces]\nx = 1", "unknown section [spaces]"),
    ("[train]\nlr = 0.01\n[space]\nlr = [0.01]", "lr is both in [train] and in [space]"),
    ("[space\nlr = [0.01]", "not valid TOML"),
])
def test_mistakes_are_one_line_errors(tmp_path, text, message):
    with pytest.raises(KilomlError, match="space.toml: ") as caught:
        load(tmp_path, text)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_the_cli_reports_a_bad_space_in_one_line_before_writing(tmp_path, capsys):
    (tmp_path / "space.toml").write_text("[space]\nhidden-sise = [4, 8]\n")
    out = tmp_path / "sweep"
    assert main(["sweep", str(tmp_path / "space.toml"), "--out", str(out)]) == 1
    assert "not an option of `kiloml train`" in error_line(capsys)
    assert not out.exists()


def test_without_ray_the_command_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "ray", None)  # import ray fails
    (tmp_path / "space.toml").write_text("[space]\nhidden-size = [4, 8]\n")
    out = tmp_path / "sweep"
    assert main(["sweep", str(tmp_path / "space.toml"), "--out", str(out)]) == 1
    assert error_line(capsys) == ("error: kiloml sweep needs Ray Tune and Optuna: "
                                  "pip install 'kiloml[sweep]'")
    assert not out.exists()


def test_an_unreachable_address_is_one_line(tmp_path, capsys):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "space.toml").write_text("[space]\nhidden-size = [4, 8]\n")
    assert main(["sweep", str(tmp_path / "space.toml"), "--out", str(tmp_path / "o"),
                 "--address", f"127.0.0.1:{port}"]) == 1
    assert f"--address 127.0.0.1:{port}: no Ray head answers there" in error_line(capsys)
