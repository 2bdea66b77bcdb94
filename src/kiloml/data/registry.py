"""Dataset names → loaders. ``load_dataset`` also accepts the user's own data as a path: a
``.npz`` file, a UEA/UCR ``.ts`` pair (either file or the stem), or a folder of WAV files in
one sub-folder per label."""

from collections.abc import Callable
from pathlib import Path

from kiloml.data import cifar10, fsdd, mnist, speech_commands, uea
from kiloml.data.animals_vehicles import load_cifar10_animals_vs_vehicles_96
from kiloml.data.cifar10 import load_cifar10
from kiloml.data.fsdd import load_fsdd
from kiloml.data.mnist import (
    load_fashion_mnist_rows,
    load_fashion_mnist_vectors,
    load_mnist_parity,
    load_mnist_pixels,
    load_mnist_rows,
    load_mnist_vectors,
)
from kiloml.data.npz import load_npz
from kiloml.data.smartwatch import load_smartwatch
from kiloml.data.speech_commands import load_speech_commands
from kiloml.data.splits import DatasetSplits
from kiloml.data.uea import load_basic_motions, load_japanese_vowels, load_ts_problem, ts_pair
from kiloml.data.wav_folder import load_wav_folder
from kiloml.errors import KilomlError

#: name -> (loader taking an optional data path, one-line description)
DATASETS: dict[str, tuple[Callable[..., DatasetSplits], str]] = {
    "smartwatch": (load_smartwatch, "seglearn smartwatch IMU, 7 exercises, split by subject"),
    "speech-commands-12": (load_speech_commands,
                           "Speech Commands v0.02 12-class test set, log-mel, split by speaker"),
    "fsdd": (load_fsdd, "Free Spoken Digit Dataset, 8 kHz log-mel, official take split"),
    "mnist-rows": (load_mnist_rows, "MNIST, 28 steps x 28 pixels"),
    "mnist-pixels": (load_mnist_pixels, "Pixel-MNIST, 784 steps x 1 pixel"),
    "fashion-mnist-rows": (load_fashion_mnist_rows, "Fashion-MNIST, 28 steps x 28 pixels"),
    "mnist": (load_mnist_vectors, "MNIST, 784-pixel feature vectors (protonn, bonsai)"),
    "mnist-2": (load_mnist_parity, "MNIST-2, even vs odd digit, 784-pixel feature vectors"),
    "fashion-mnist": (load_fashion_mnist_vectors, "Fashion-MNIST, 784-pixel feature vectors"),
    "basic-motions": (load_basic_motions, "UEA BasicMotions IMU, 6 x 100, 4 activities"),
    "japanese-vowels": (load_japanese_vowels, "UEA JapaneseVowels LPC, 12 x 29, 9 speakers"),
    "cifar10": (load_cifar10, "CIFAR-10 (JPEG), 32 rows x 96 (32 RGB pixels), 10 classes"),
    "cifar10-animals-vs-vehicles-96": (
        load_cifar10_animals_vs_vehicles_96,
        "CIFAR-10 animals vs vehicles enlarged to 96x96 images, a stand-in for person "
        "detection (not Visual Wake Words); vision models only"),
}

#: datasets read from many files, whose loaders accept ``skip_bad_files``
FILE_DATASETS: set[str] = {"speech-commands-12", "fsdd", "basic-motions", "japanese-vowels"}
#: datasets cut from longer recordings, whose loaders accept ``train_hop`` and ``train_speeds``
WINDOWED_DATASETS: set[str] = {"smartwatch"}

USER_DATA_HINT = ("or pass your own data: a .npz file with X_train, y_train, X_test, y_test; "
                  "a .ts file pair NAME_TRAIN.ts/NAME_TEST.ts; or a folder of WAV files in one "
                  "sub-folder per label")


def load_dataset(name: str, data_dir: Path | str | None = None, *,
                 skip_bad_files: bool = False, train_hop: int | None = None,
                 train_speeds: tuple[float, ...] | None = None) -> DatasetSplits:
    """Load a registered dataset by ``name`` (optionally from ``data_dir``), or the user's own
    data at the path ``name`` (``.npz``, ``.ts`` pair or WAV folder).

    With ``skip_bad_files``, loaders that read many files skip unreadable ones instead of
    failing and list them in ``info["skipped_files"]`` as ``[file, reason]`` pairs.
    ``train_hop`` (samples) cuts the training windows of a windowed dataset more or less densely,
    and ``train_speeds`` also cuts them from its training recordings replayed at those speeds.
    """
    windowing = {k: v for k, v in (("train_hop", train_hop), ("train_speeds", train_speeds))
                 if v is not None}
    if windowing and name not in WINDOWED_DATASETS:
        flag = "--" + next(iter(windowing)).replace("_", "-")
        raise KilomlError(f"{flag} applies to datasets cut into windows from longer "
                          f"recordings ({', '.join(sorted(WINDOWED_DATASETS))}), not to {name}")
    if name in DATASETS:
        loader = DATASETS[name][0]
        path = Path(data_dir) if data_dir is not None else None
        if windowing:
            return loader(path, **windowing)
        if name in FILE_DATASETS:
            return loader(path, skip_bad_files=skip_bad_files)
        return loader(path)
    if name.endswith(".npz"):
        return load_npz(Path(name))
    path = Path(name)
    if name.lower().endswith(".ts") or any(p.is_file() for p in ts_pair(path)):
        return load_ts_problem(path, skip_bad_files=skip_bad_files)
    if path.is_dir():
        return load_wav_folder(path, skip_bad_files=skip_bad_files)
    raise KilomlError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)} "
                      + USER_DATA_HINT)


def load_run_dataset(data_config: dict, data_dir: Path | str | None = None,
                     windowing: bool = False) -> DatasetSplits:
    """The dataset of a run from ``config.json``'s ``data`` section: its name or path and
    ``skip_bad_files`` (and with ``windowing``, the training windows' ``train_hop`` and
    ``train_speeds``); for a run whose sequences were padded in front to a whole number of
    frames (``padded_from``), the same padding. ``data_dir`` overrides the stored location."""
    options = {k: data_config.get(k) for k in ("train_hop", "train_speeds")} if windowing else {}
    data = load_dataset(data_config["dataset"], data_dir or data_config.get("data_dir"),
                        skip_bad_files=data_config.get("skip_bad_files", False), **options)
    if data_config.get("padded_from") is not None:
        if data.steps != data_config["padded_from"]:
            raise KilomlError(f"{data_config['dataset']}: {data.steps} steps, but the run was "
                              f"trained on {data_config['padded_from']}")
        data = data.pad_front(data_config["steps"])
    return data


def dataset_location(name: str) -> str | None:
    """Where a registered dataset is looked for by default (for ``kiloml datasets``)."""
    if name == "smartwatch":
        from kiloml.data.smartwatch import default_path

        path = default_path()
    elif name == "speech-commands-12":
        path = speech_commands.default_path() / speech_commands.ARCHIVE
    elif name == "fsdd":
        path = fsdd.default_path() / fsdd.ARCHIVE
    elif name in ("mnist-rows", "mnist-pixels", "mnist", "mnist-2"):
        path = mnist.default_path()
    elif name in ("fashion-mnist-rows", "fashion-mnist"):
        path = mnist.FASHION_MNIST_DEBIAN
    elif name in ("cifar10", "cifar10-animals-vs-vehicles-96"):
        path = cifar10.default_path() / cifar10.ARCHIVE
    elif name in uea.BUNDLED:
        path = uea.default_path(name)
    else:
        return None
    return str(path) if path else None
