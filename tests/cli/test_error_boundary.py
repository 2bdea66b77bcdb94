"""One way to fail: every subcommand, given bad arguments, ends in one ``error:`` line and a
non-zero exit; anything unexpected too, with the traceback only under ``--debug``."""

import pytest

from kiloml import cli
from kiloml.cli import build_parser, main
from kiloml.errors import KilomlError


def _not_a_run(tmp):
    (tmp / "garbage").mkdir()
    (tmp / "garbage" / "config.json").write_text("{not json")
    return str(tmp / "garbage")


def _a_file(tmp):
    (tmp / "file.txt").write_text("x")
    return str(tmp / "file.txt")


#: Bad arguments for every subcommand (each a function of a temporary folder).
CASES = {
    "train": [lambda tmp: ["--dataset", "nope.npz"], lambda tmp: ["--epochs", "0"],
              lambda tmp: ["--lr", "fast"], lambda tmp: ["--out", _a_file(tmp)],
              lambda tmp: ["--resume", "--out", str(tmp / "none")]],
    "demo": [lambda tmp: ["--dataset", "nope.npz"], lambda tmp: ["--bits", "7"],
             lambda tmp: ["--model", "gru", "--sparsity-w", "0.5"]],
    "export": [lambda tmp: [str(tmp / "none"), "--out", str(tmp / "c")],
               lambda tmp: [_not_a_run(tmp), "--out", str(tmp / "c")],
               lambda tmp: [str(tmp), "--bits", "3", "--out", "c"], lambda tmp: [str(tmp)]],
    "verify": [lambda tmp: [str(tmp / "none")], lambda tmp: [str(tmp)],
               lambda tmp: [str(tmp), "--targets", "riscv"],
               lambda tmp: [str(tmp), "--targets", ","], lambda tmp: [_a_file(tmp)]],
    "eval": [lambda tmp: [str(tmp / "none")], lambda tmp: [_a_file(tmp)],
             lambda tmp: [_not_a_run(tmp)], lambda tmp: [],
             lambda tmp: [str(tmp / "none"), "--stream", "--hop", "0"],
             lambda tmp: [str(tmp / "none"), "--gap", "1"]],
    "info": [lambda tmp: [str(tmp / "none")], lambda tmp: [_not_a_run(tmp)],
             lambda tmp: [str(tmp), "extra"]],
    "datasets": [lambda tmp: ["--all"], lambda tmp: ["smartwatch"]],
    "sweep": [lambda tmp: [str(tmp / "none.toml"), "--out", str(tmp / "s")],
              lambda tmp: [_a_file(tmp), "--out", str(tmp / "s")], lambda tmp: [_a_file(tmp)],
              lambda tmp: [str(tmp), "--out", str(tmp / "s"), "--workers", "0"],
              lambda tmp: [_a_file(tmp), "--out", str(tmp / "s"), "--resume", "--overwrite"]],
}


def test_every_subcommand_has_bad_argument_cases():
    assert set(CASES) == set(build_parser().commands)


@pytest.mark.parametrize("command,make", [(c, m) for c, makes in CASES.items() for m in makes])
def test_bad_arguments_end_in_one_error_line(command, make, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        code = main([command, *make(tmp_path)])
    except SystemExit as exc:  # argument errors: argparse exits with 2
        code = exc.code
    captured = capsys.readouterr()
    assert code in (1, 2)
    assert "Traceback" not in captured.err + captured.out
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err


@pytest.mark.parametrize("error,expected", [
    (RuntimeError("[bold]boom[/] in :cat:\nsecond line"),
     "error: RuntimeError: [bold]boom[/] in :cat: (and 1 more lines; --debug shows them) "
     "(unexpected: please report it; --debug shows where it happened)"),
    (PermissionError(13, "Permission denied", "/data/[x].npz"),
     "error: /data/[x].npz: Permission denied"),
    (MemoryError(), "error: out of memory"),
    (KilomlError("gcc failed (exit 1): model.c:3: error: 'nan' undeclared\n" + "  x\n" * 28),
     "error: gcc failed (exit 1): model.c:3: error: 'nan' undeclared (and 28 more lines; "
     "--debug shows them)"),
])
def test_anything_unexpected_is_one_line(error, expected, capsys, monkeypatch):
    def fail(args):
        raise error

    monkeypatch.setitem(cli.COMMANDS, "datasets", fail)
    assert main(["datasets"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == expected
    assert main(["datasets", "--debug"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and "in fail" in err
    assert err.strip().splitlines()[-1].startswith("error: ")


def test_debug_is_accepted_before_the_command_too(tmp_path, capsys):
    assert main(["--debug", "eval", str(tmp_path / "none")]) == 1
    assert "Traceback" in capsys.readouterr().err
