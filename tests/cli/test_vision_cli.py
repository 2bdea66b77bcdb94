"""`kiloml train --model mobilenetv2|rnnpool-mobilenetv2`: a tiny run, its recipe and options, and
every bad input as one error line."""

import json

import pytest

from kiloml.cli import main

from ..data.test_cifar10 import tiny_cifar
from .cli_helpers import error_line, write_npz

TINY = ["--width-mult", "0.25", "--epochs", "1", "--batch-size", "16", "--folds", "0"]


@pytest.fixture
def cifar(tmp_path, monkeypatch):
    monkeypatch.setenv("KILOML_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return tiny_cifar(tmp_path / "cifar", train_per_class=10, test_per_class=2)


def _train(cifar, out, *extra, dataset="cifar10"):
    return main(["train", "--dataset", dataset, "--data-dir", str(cifar), *TINY,
                 "--out", str(out), *extra])


@pytest.mark.parametrize("model", ["mobilenetv2", "rnnpool-mobilenetv2"])
def test_a_tiny_run_trains_with_the_vision_recipe(model, cifar, tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(cifar, run, "--model", model) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["kind"] == model and config["model"]["width_mult"] == 0.25
    assert (config["model"]["height"], config["model"]["in_channels"]) == (32, 3)
    assert config["defaults"]["recipe"]["kind"] == "vision"
    assert (config["train"]["augment_crop"], config["train"]["augment_flip"]) == (4, True)
    assert config["train"]["augment_noise"] == config["train"]["augment_scale"] == 0
    out = capsys.readouterr().out
    assert "images 3×32×32" in out and "random crop after padding by 4" in out
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 <= metrics["test_accuracy"] <= 1 and metrics["macs_per_inference"] > 0
    if model == "rnnpool-mobilenetv2":
        assert config["model"]["rnnpool_hidden"] == 4  # half of the 8-channel stage at w=0.25
    assert main(["export", str(run), "--bits", "16", "--out", str(tmp_path / "c")]) == 1
    assert "image models are exported with int8 weights and activations" in error_line(capsys)
    assert main(["export", str(run), "--out", str(tmp_path / "c")]) == 0  # int8 by default
    assert json.loads((tmp_path / "c" / "export.json").read_text())["bits"] == 8
    assert main(["eval", str(run)]) == 0


def test_no_augment_and_an_explicit_crop(cifar, tmp_path):
    assert _train(cifar, tmp_path / "a", "--model", "mobilenetv2", "--no-augment") == 0
    train = json.loads((tmp_path / "a" / "config.json").read_text())["train"]
    assert (train["augment_crop"], train["augment_flip"], train["augment_noise"]) == (0, False, 0)
    assert _train(cifar, tmp_path / "b", "--model", "mobilenetv2", "--augment-crop", "2") == 0
    train = json.loads((tmp_path / "b" / "config.json").read_text())["train"]
    assert (train["augment_crop"], train["augment_flip"]) == (2, True)


@pytest.mark.parametrize("argv, message", [
    (["--model", "rnnpool-mobilenetv2", "--rnnpool-patch", "40"],
     "error: RNNPool patch 40x40 is larger than the 32x32 map after the stem (32x32 images); "
     "use a smaller --rnnpool-patch"),
    (["--model", "mobilenetv2", "--rnnpool-patch", "6"],
     "error: --rnnpool-patch apply to rnnpool-mobilenetv2, not mobilenetv2"),
    (["--model", "mobilenetv2", "--hidden-size", "8"],
     "error: --hidden-size apply to recurrent models, not mobilenetv2"),
    (["--model", "fastgrnn", "--width-mult", "0.5"],
     "error: --width-mult apply to mobilenetv2 and rnnpool-mobilenetv2, not fastgrnn"),
    (["--model", "mobilenetv2", "--no-augment", "--augment-crop", "2"],
     "error: --no-augment turns every augmentation off; drop --augment-crop"),
])
def test_bad_vision_options_are_one_line_errors(argv, message, cifar, tmp_path, capsys):
    argv = [a for a in TINY if a not in ("--width-mult", "0.25")] + argv
    assert main(["train", "--dataset", "cifar10", "--data-dir", str(cifar), *argv,
                 "--out", str(tmp_path / "run")]) == 1
    assert error_line(capsys) == message


def test_a_sequence_dataset_given_to_a_vision_model(tmp_path, capsys):
    data = write_npz(tmp_path / "seq.npz")
    assert main(["train", "--dataset", str(data), "--model", "mobilenetv2", *TINY,
                 "--out", str(tmp_path / "run")]) == 1
    line = error_line(capsys)
    assert line.startswith("error: mobilenetv2 takes images [N, C, H, W]; seq holds sequences [N, ")
    assert line.endswith("use an image dataset (cifar10, cifar10-animals-vs-vehicles-96)")


def test_an_image_dataset_given_to_a_sequence_model(cifar, tmp_path, capsys):
    assert main(["train", "--dataset", "cifar10-animals-vs-vehicles-96", "--data-dir",
                 str(cifar), "--model", "fastgrnn", "--out", str(tmp_path / "run")]) == 1
    assert error_line(capsys) == (
        "error: fastgrnn takes sequences [N, T, F]; cifar10-animals-vs-vehicles-96 holds images "
        "[N, 3, 96, 96] for the vision models: use --model mobilenetv2 or rnnpool-mobilenetv2 "
        "(or dataset cifar10, whose rows a sequence model reads as steps)")


def test_images_of_the_wrong_size_for_a_trained_model(cifar, tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(cifar, run, "--model", "mobilenetv2") == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--data", "cifar10-animals-vs-vehicles-96", "--data-dir",
                 str(cifar)]) == 1
    assert error_line(capsys) == (
        "error: cifar10-animals-vs-vehicles-96 holds images [N, 3, 96, 96], but the mobilenetv2 "
        "model takes [N, 3, 32, 32] (3 channels, 32x32 pixels)")


def test_help_documents_the_vision_options(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for text in ("--width-mult", "--rnnpool-patch", "--rnnpool-hidden", "--augment-crop",
                 "--no-augment", "mobilenetv2 or rnnpool-mobilenetv2",
                 "cosine-decayed over all steps", "horizontal flip"):
        assert text in out, text
