"""Reader and writer for the UEA/UCR ``.ts`` text format (classification problems).

A file is ``#`` comment lines, ``@`` header lines (``@problemName``, ``@timeStamps``,
``@univariate``, ``@dimensions``, ``@equalLength``, ``@seriesLength``, ``@classLabel true
<labels...>``, ...), then ``@data`` and one case per line: the dimensions separated by ``:``,
each a comma-separated list of values, and the class label last, e.g. ``1,2,3:4,5,6:walk``.
Time-stamped series and missing values (``?``) are not supported. A data line that cannot be
read (wrong number of dimensions, a non-numeric value, dimensions of different lengths, an
undeclared class label) is a bad line, reported as ``FILE:LINE``.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kiloml.data.bad_files import BadFiles
from kiloml.errors import KilomlError


@dataclass
class TsData:
    """The cases of one ``.ts`` file: ``series[i]`` ``[T_i, D]`` float64, ``labels[i]``."""

    problem_name: str
    class_labels: list[str]
    series: list[np.ndarray]
    labels: list[str]


def _flag(value: str, tag: str, where: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise KilomlError(f"{where}: {tag} must be true or false, got {value!r}")
    return value.lower() == "true"


def _case(line: str, dimensions: int | None, labels: set[str]) -> tuple[np.ndarray, str]:
    """One data line → ``([T, D] values, label)``; ``ValueError`` names what is wrong."""
    *fields, label = line.split(":")
    label = label.strip()
    if not fields:
        raise ValueError("no values before the class label")
    if dimensions is not None and len(fields) != dimensions:
        raise ValueError(f"{len(fields)} dimensions, expected {dimensions}")
    if label not in labels:
        raise ValueError(f"class label {label!r} is not declared in @classLabel")
    columns = []
    for d, field in enumerate(fields):
        tokens = [t.strip() for t in field.split(",")]
        if tokens == [""]:
            raise ValueError(f"dimension {d} is empty")
        if "?" in tokens:
            raise ValueError(f"dimension {d} has missing values ('?'), which are not supported")
        try:
            columns.append(np.array([float(t) for t in tokens]))
        except ValueError:
            bad = next(t for t in tokens if not _is_float(t))
            raise ValueError(f"dimension {d}: {bad[:20]!r} is not a number") from None
    lengths = {len(c) for c in columns}
    if len(lengths) != 1:
        raise ValueError(f"dimensions of different lengths {sorted(lengths)}")
    values = np.stack(columns, axis=1)
    if not np.all(np.isfinite(values)):
        raise ValueError("non-finite values (nan/inf)")
    return values, label


def _is_float(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def read_ts(path: Path, bad: BadFiles | None = None) -> TsData:
    """Read a classification ``.ts`` file; bad data lines go to ``bad`` (default: raise)."""
    path = Path(path)
    bad = bad if bad is not None else BadFiles(skip=False)
    if not path.is_file():
        raise KilomlError(f"{path}: file not found")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise KilomlError(f"{path}: not a readable .ts text file ({e})") from None
    header: dict[str, str] = {}
    class_labels: list[str] | None = None
    series, labels = [], []
    in_data = False
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            if not line.startswith("@"):
                raise KilomlError(f"{path}:{number}: expected a @ header line before @data")
            tag, _, value = line[1:].partition(" ")
            tag, value = tag.lower(), value.strip()
            if tag == "data":
                in_data = True
                if class_labels is None:
                    raise KilomlError(f"{path}: no '@classLabel true ...' header (kiloml reads "
                                      "classification problems)")
            elif tag == "classlabel":
                flag, *names = value.split()
                if not flag or not _flag(flag, "@classLabel", f"{path}:{number}") or not names:
                    raise KilomlError(f"{path}:{number}: need '@classLabel true <labels...>'")
                class_labels = names
            elif tag == "timestamps" and _flag(value, "@timeStamps", f"{path}:{number}"):
                raise KilomlError(f"{path}: time-stamped series are not supported")
            else:
                header[tag] = value
            continue
        dimensions = int(header["dimensions"]) if header.get("dimensions", "").isdigit() else None
        if dimensions is None and series:
            dimensions = series[0].shape[1]
        try:
            values, label = _case(line, dimensions, set(class_labels))
        except ValueError as e:
            bad.report(f"{path}:{number}", f"malformed line ({e})")
            continue
        series.append(values)
        labels.append(label)
    if not in_data:
        raise KilomlError(f"{path}: no @data line (not a .ts file?)")
    if not series:
        raise KilomlError(f"{path}: no readable cases after @data")
    return TsData(header.get("problemname", path.stem), class_labels, series, labels)


def write_ts(path: Path, data: TsData) -> None:
    """Write ``data`` as a ``.ts`` file that ``read_ts`` reads back exactly (float64 repr)."""
    dims = {s.shape[1] for s in data.series}
    lengths = {len(s) for s in data.series}
    lines = [f"@problemName {data.problem_name}", "@timeStamps false", "@missing false",
             f"@univariate {'true' if dims == {1} else 'false'}"]
    if len(dims) == 1:
        lines.append(f"@dimensions {dims.pop()}")
    lines.append(f"@equalLength {'true' if len(lengths) == 1 else 'false'}")
    if len(lengths) == 1:
        lines.append(f"@seriesLength {lengths.pop()}")
    lines += [f"@classLabel true {' '.join(data.class_labels)}", "@data"]
    for values, label in zip(data.series, data.labels, strict=True):
        dims_text = [",".join(repr(float(v)) for v in column) for column in values.T]
        lines.append(":".join(dims_text) + f":{label}")
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
