"""What the command-line tests share: a small .npz, a quick training run and reading the error
line."""

import numpy as np

from kiloml.cli import main
from tests.conftest import synthetic_splits

#: A training run that takes about a second.
#: A small model and budget; the epoch is chosen on the validation split (these tests are about
#: the command line, not about model selection).
QUICK = ["--hidden-size", "8", "--u-rank", "4", "--epochs", "3", "--batch-size", "32",
         "--folds", "0"]


def write_npz(path, **overrides):
    """The synthetic task as an ``.npz`` (arrays replaced by ``overrides``)."""
    d = synthetic_splits()
    arrays = dict(X_train=d.train.x, y_train=d.train.y, X_test=d.test.x, y_test=d.test.y)
    arrays.update(overrides)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def error_line(capsys) -> str:
    """The single line the CLI printed on stderr."""
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def train(data, out, *extra) -> int:
    return main(["train", "--dataset", str(data), *QUICK, "--out", str(out), *extra])
