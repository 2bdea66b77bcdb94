"""``SPACE.toml``: what a sweep searches, what it optimises and what the device allows.

::

    [train]                           # options every trial gets: any `kiloml train` option
    dataset = "smartwatch"
    epochs = 12

    [space]                           # what is searched: `kiloml train` options
    hidden-size = [8, 16, 32]         # choices
    sparsity-w = { range = [0.2, 1.0] }      # uniform; whole numbers when both ends are
    lr = { log-range = [0.002, 0.03] }       # log-uniform

    [search]
    trials = 16                       # trial budget
    objectives = ["val_accuracy", "bytes"]   # and "m4_instructions" (a third objective)
    bits = 16                         # weight width the bytes and budgets are counted at
    seed = 0

    [constraints]                     # the device: trials over budget are never on the front
    max-flash = 4096                  # bytes of stored constants (as `kiloml export --max-flash`)
    max-ram = 2048                    # bytes of arena and outputs (the stack is not counted)

    [asha]                            # early stopping of poor trials (omit: on, these values)
    grace-period = 2                  # epochs every trial runs before it may be stopped
    reduction-factor = 2

Every option name and every value is checked against ``kiloml train``'s own parser before
anything runs: a mistake is a one-line error naming the file and the key.
"""

import argparse
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from kiloml.errors import KilomlError

#: Options a sweep decides itself: where each trial writes, and one thread per trial.
RESERVED = {"out", "resume", "overwrite", "threads", "debug", "help"}
#: What a sweep can optimise. Test accuracy is never one of them.
OBJECTIVES = ("val_accuracy", "bytes", "m4_instructions")
#: Each objective's direction, as Optuna and the Pareto front take it.
OBJECTIVE_MODES = {"val_accuracy": "max", "bytes": "min", "m4_instructions": "min"}
SECTIONS = {"train", "space", "search", "constraints", "asha"}


@dataclass(frozen=True)
class Choice:
    """One of ``values`` (each stored as JSON text, so lists can be choices too)."""

    values: tuple


@dataclass(frozen=True)
class Range:
    """A number from ``low`` to ``high`` (whole numbers when both ends are), log-uniform when
    ``log``."""

    low: float
    high: float
    log: bool = False

    @property
    def integer(self) -> bool:
        return isinstance(self.low, int) and isinstance(self.high, int)


@dataclass
class Space:
    """A parsed ``SPACE.toml`` (see the module docstring)."""

    fixed: dict  # option dest -> value, for every trial
    params: dict  # option dest -> Choice | Range
    flags: dict  # option dest -> its flag ("--hidden-size")
    trials: int = 16
    objectives: tuple = ("val_accuracy", "bytes")
    bits: int = 16
    seed: int = 0
    max_flash: int | None = None
    max_ram: int | None = None
    asha: dict | None = field(default_factory=lambda: {"grace_period": 2,
                                                       "reduction_factor": 2})

    def argv(self, values: dict) -> list[str]:
        """The ``kiloml train`` arguments of one trial: the fixed options and ``values``
        (option dest -> value)."""
        args = []
        for dest, value in {**self.fixed, **values}.items():
            args += option_tokens(self.flags[dest], value)
        return args


def option_tokens(flag: str, value) -> list[str]:
    """``--flag value`` as command-line words: ``True`` is the bare flag, ``False`` nothing, a
    list one word per item."""
    if isinstance(value, bool):
        return [flag] if value else []
    if isinstance(value, list):
        return [flag, *map(str, value)]
    return [flag, str(value)]


def _key(name: str) -> str:
    return name.replace("-", "_")


def _train_actions(parser: argparse.ArgumentParser) -> dict:
    """dest -> action of every option a sweep may set."""
    return {a.dest: a for a in parser._actions
            if a.option_strings and a.dest not in RESERVED}


def _check_value(action: argparse.Action, value, where: str) -> None:
    """One-line error unless ``kiloml train`` accepts ``value`` for ``action``."""
    flag = action.option_strings[-1]
    if action.nargs == 0:
        if not isinstance(value, bool):
            raise KilomlError(f"{where}: {flag} is a switch; give true or false, not {value!r}")
        return
    items = value if isinstance(value, list) else [value]
    if isinstance(value, list) and action.nargs not in ("+", "*"):
        raise KilomlError(f"{where}: {flag} takes one value, not a list")
    if isinstance(value, dict | bool) or not items:
        raise KilomlError(f"{where}: {flag} cannot be {value!r}")
    for item in items:
        try:
            converted = action.type(str(item)) if action.type else str(item)
        except (argparse.ArgumentTypeError, ValueError, TypeError) as e:
            raise KilomlError(f"{where}: {flag} {item}: {e}") from None
        if action.choices is not None and converted not in action.choices:
            raise KilomlError(f"{where}: {flag} {item}: choose from "
                              f"{', '.join(map(str, action.choices))}")


def _number(value, where: str):
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise KilomlError(f"{where}: expected a number, got {value!r}")
    return value


def _param(value, action: argparse.Action, where: str):
    """A ``[space]`` entry: a list of choices, ``{choices = [...]}``, ``{range = [lo, hi]}`` or
    ``{log-range = [lo, hi]}``."""
    if isinstance(value, list):
        value = {"choices": value}
    if not isinstance(value, dict) or len(value) != 1:
        raise KilomlError(f"{where}: give a list of choices, {{ range = [LOW, HIGH] }} or "
                          "{ log-range = [LOW, HIGH] }")
    (kind, spec), = value.items()
    kind = _key(kind)
    if kind == "choices":
        if not isinstance(spec, list) or not spec:
            raise KilomlError(f"{where}: empty list of choices")
        for item in spec:
            _check_value(action, item, where)
        return Choice(tuple(json.dumps(item) for item in spec))
    if kind not in ("range", "log_range"):
        raise KilomlError(f"{where}: unknown kind {kind!r}; give choices, range or log-range")
    if not isinstance(spec, list) or len(spec) != 2:
        raise KilomlError(f"{where}: a {kind.replace('_', '-')} is [LOW, HIGH]")
    low, high = (_number(v, where) for v in spec)
    if not low < high:
        raise KilomlError(f"{where}: empty range [{low}, {high}]: LOW must be below HIGH (a "
                          "single value belongs in [train])")
    if kind == "log_range" and low <= 0:
        raise KilomlError(f"{where}: a log-range needs LOW > 0, got {low}")
    for end in (low, high):
        _check_value(action, end, where)
    return Range(low, high, log=kind == "log_range")


def _whole(value, where: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise KilomlError(f"{where}: expected a whole number >= {low}, got {value!r}")
    return value


def load_space(path: Path, train_parser: argparse.ArgumentParser) -> Space:
    """Read and check ``path`` against ``train_parser`` (``kiloml train``'s parser); every
    mistake is a one-line :class:`KilomlError`."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise KilomlError(f"{path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise KilomlError(f"{path}: not a text file") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise KilomlError(f"{path}: not valid TOML ({e})") from None
    unknown = sorted(set(doc) - SECTIONS)
    if unknown:
        raise KilomlError(f"{path}: unknown section [{unknown[0]}]; sections are "
                          f"{', '.join(sorted(SECTIONS))}")
    for name in SECTIONS & set(doc):
        if not isinstance(doc[name], dict):
            raise KilomlError(f"{path}: {name} must be a [{name}] table")
    actions = _train_actions(train_parser)

    def action_for(name: str, section: str) -> argparse.Action:
        dest = _key(name)
        if dest in RESERVED:
            raise KilomlError(f"{path}: [{section}] {name}: the sweep sets --{name} itself")
        if dest not in actions:
            raise KilomlError(f"{path}: [{section}] {name}: not an option of `kiloml train` "
                              "(see `kiloml train --help`)")
        return actions[dest]

    fixed, params, flags = {}, {}, {}
    for name, value in doc.get("train", {}).items():
        action = action_for(name, "train")
        _check_value(action, value, f"{path}: [train] {name}")
        fixed[action.dest], flags[action.dest] = value, action.option_strings[-1]
    for name, value in doc.get("space", {}).items():
        action = action_for(name, "space")
        if action.dest in fixed:
            raise KilomlError(f"{path}: {name} is both in [train] and in [space]")
        params[action.dest] = _param(value, action, f"{path}: [space] {name}")
        flags[action.dest] = action.option_strings[-1]
    if not params:
        raise KilomlError(f"{path}: [space] is empty: name at least one option to search")
    space = Space(fixed=fixed, params=params, flags=flags)
    search = {_key(k): v for k, v in doc.get("search", {}).items()}
    for key in search:
        if key not in ("trials", "objectives", "bits", "seed"):
            raise KilomlError(f"{path}: [search] {key}: unknown; give trials, objectives, bits "
                              "or seed")
    space.trials = _whole(search.get("trials", space.trials), f"{path}: [search] trials")
    space.seed = _whole(search.get("seed", space.seed), f"{path}: [search] seed", low=0)
    space.bits = search.get("bits", space.bits)
    if space.bits not in (8, 16) or isinstance(space.bits, bool):
        raise KilomlError(f"{path}: [search] bits: 8 or 16, got {space.bits!r}")
    objectives = search.get("objectives", list(space.objectives))
    if not isinstance(objectives, list) or not all(isinstance(o, str) for o in objectives):
        raise KilomlError(f"{path}: [search] objectives: a list such as "
                          "[\"val_accuracy\", \"bytes\"]")
    for objective in objectives:
        if "test" in objective:
            raise KilomlError(f"{path}: [search] objectives: {objective}: the test split is "
                              "never searched on; the front is evaluated on it at the end")
        if objective not in OBJECTIVES:
            raise KilomlError(f"{path}: [search] objectives: unknown {objective!r}; choose "
                              f"from {', '.join(OBJECTIVES)}")
    if objectives[:2] != ["val_accuracy", "bytes"] or len(set(objectives)) != len(objectives):
        raise KilomlError(f"{path}: [search] objectives: val_accuracy and bytes come first "
                          "(validation accuracy up, bytes down); m4_instructions may follow")
    space.objectives = tuple(objectives)
    constraints = {_key(k): v for k, v in doc.get("constraints", {}).items()}
    for key, value in constraints.items():
        if key not in ("max_flash", "max_ram"):
            raise KilomlError(f"{path}: [constraints] {key}: unknown; give max-flash or max-ram")
        setattr(space, key, _whole(value, f"{path}: [constraints] {key.replace('_', '-')}"))
    asha = {_key(k): v for k, v in doc.get("asha", {}).items()}
    if asha.get("enabled", True) is False:
        space.asha = None
    else:
        for key in asha:
            if key not in ("enabled", "grace_period", "reduction_factor"):
                raise KilomlError(f"{path}: [asha] {key}: unknown; give enabled, grace-period "
                                  "or reduction-factor")
        space.asha = {"grace_period": _whole(asha.get("grace_period", 2),
                                             f"{path}: [asha] grace-period"),
                      "reduction_factor": _whole(asha.get("reduction_factor", 2),
                                                 f"{path}: [asha] reduction-factor", low=2)}
    return space
