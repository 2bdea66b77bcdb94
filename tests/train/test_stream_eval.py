"""Streaming evaluation: the matching rule on a hand-computed stream (accuracy, latency, false
alarms), the windows a model decides on, the cascade's upper-tier calls, EMI-FastGRNN's
instances with early exit and their longest run, how clip streams are built, and one-line
errors for NaN, a stream shorter than a brick, a wrong hop and non-sequence models."""

import itertools

import numpy as np
import pytest
import torch

from kiloml.cli import main
from kiloml.data.splits import Split
from kiloml.data.streams import Stream, clip_stream, from_segments
from kiloml.errors import KilomlError
from kiloml.models import build_model
from kiloml.nn.cascade import CascadeConfig
from kiloml.nn.classifier import ModelConfig
from kiloml.nn.emi import EMIConfig
from kiloml.nn.protonn import ProtoNNConfig
from kiloml.nn.sharnn import ShaRNNConfig
from kiloml.train.stream_decisions import (
    emi_stream_decisions,
    evaluate_stream,
    stream_decisions,
)
from kiloml.train.stream_metrics import decision_frames, majority_labels, stream_metrics
from tests.cli.cli_helpers import error_line
from tests.conftest import synthetic_splits


def _hand_stream() -> Stream:
    """20 frames at 2 frames/s: noise 0-3, class 1 at 4-7, noise 8-11, class 2 at 12-15,
    noise 16-19."""
    parts = [(np.zeros((4, 1)), c) for c in (0, 1, 0, 2, 0)]
    return from_segments(parts, 0, 2.0, "hand")


def test_matching_rule_on_a_hand_computed_stream():
    stream = _hand_stream()
    ends = decision_frames(20, 4, 2)
    assert ends.tolist() == [3, 5, 7, 9, 11, 13, 15, 17, 19]
    # windows of 4 frames: [2..5] and [6..9] are ties, which go to the lowest class (0)
    assert majority_labels(stream.labels, ends, 4).tolist() == [0, 0, 1, 0, 0, 0, 2, 0, 0]
    classes = np.array([0, 1, 1, 1, 2, 0, 0, 1, 0])
    m = stream_metrics(stream, ends, classes, 4)
    assert m["accuracy"] == pytest.approx(4 / 9)
    # class 1 (frames 4-7) is first decided at frame 5: 2 frames = 1 s; class 2 never
    assert (m["events"], m["detected"], m["latency_seconds"]) == (2, 1, 1.0)
    # onsets at frames 5 (class 1, overlaps its event), 11 (class 2; window 8-11 misses
    # 12-15) and 17 (class 1; window 14-17 misses 4-7): two false alarms in 10 s
    assert (m["onsets"], m["false_alarms"]) == (3, 2)
    assert m["false_alarms_per_hour"] == pytest.approx(720.0)


def test_without_a_noise_class_every_segment_is_an_event():
    stream = from_segments([(np.zeros((6, 1)), 3), (np.zeros((6, 1)), 5)], None, 1.0, "rec")
    ends = decision_frames(12, 4, 4)  # frames 3, 7, 11
    m = stream_metrics(stream, ends, np.array([3, 3, 5]), 4)
    assert m["accuracy"] == 1.0  # window 4-7 is 2 frames of each: the lower class, 3
    # latencies: class 3 at frame 3 (4 frames from 0), class 5 at frame 11 (6 from 6)
    assert (m["detected"], m["latency_seconds"], m["false_alarms"]) == (2, 5.0, 0)
    m = stream_metrics(stream, ends, np.array([5, 3, 3]), 4)  # 5 at frame 3: no 5 there yet
    assert (m["onsets"], m["false_alarms"], m["detected"]) == (2, 1, 1)


def _fastgrnn(features=3, classes=3):
    torch.manual_seed(0)
    return build_model(ModelConfig(kind="fastgrnn", input_size=features, num_classes=classes,
                                   hidden_size=6)).eval()


def test_decisions_are_the_model_on_each_window():
    model = _fastgrnn()
    frames = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    ends, classes, fraction = stream_decisions(model, frames, 12, 5, batch=3)
    assert ends.tolist() == [11, 16, 21, 26, 31, 36] and fraction is None
    with torch.no_grad():
        expected = [int(model(torch.from_numpy(frames[None, t - 11:t + 1])).argmax())
                    for t in ends]
    assert classes.tolist() == expected


def test_a_cascade_calls_its_upper_tier_only_where_the_lower_fires():
    torch.manual_seed(0)
    model = build_model(CascadeConfig(kind="cascade", input_size=3, num_classes=3,
                                      lower_hidden_size=4, upper_hidden_size=5)).eval()
    frames = np.random.default_rng(1).normal(size=(60, 3)).astype(np.float32)
    windows = torch.from_numpy(np.stack([frames[t - 7:t + 1] for t in range(7, 60, 4)]))
    with torch.no_grad():
        p = model.event_probability(windows).numpy()
    model.config.threshold = float(np.median(p))
    ends, classes, fraction = stream_decisions(model, frames, 8, 4)
    fired = p >= model.config.threshold
    assert fraction == pytest.approx(fired.mean()) and 0 < fired.mean() < 1
    assert (classes[~fired] == 0).all() and (classes[fired] != 0).all()


def test_clip_streams_follow_the_seeded_rule():
    x = np.arange(7)[:, None, None] * np.ones((7, 2, 1), dtype=np.float32)  # clip i: value i
    y = np.array([0, 1, 2, 0, 1, 0, 2])
    stream = clip_stream(Split(x, y), noise=0, seed=3, gap=1, rate=2.0)
    rng = np.random.default_rng(3)
    order = np.array([1, 2, 4, 6])[rng.permutation(4)]
    fill = np.array([0, 3, 5])[rng.integers(0, 3, size=5)]
    expected = [fill[0], order[0], fill[1], order[1], fill[2], order[2], fill[3], order[3],
                fill[4]]
    assert stream.frames[::2, 0].tolist() == expected
    assert [c for _, _, c in stream.segments] == [int(y[i]) for i in expected]
    assert stream.events() == [(2 + 4 * i, 4 + 4 * i, int(y[order[i]])) for i in range(4)]
    assert stream.seconds == 9.0 and len(clip_stream(Split(x, y), 0, gap=0).frames) == 8


def test_bad_streams_and_models_are_one_line_errors():
    model = _fastgrnn()
    frames = np.zeros((30, 3), dtype=np.float32)
    frames[17, 1] = np.nan
    with pytest.raises(KilomlError, match=r"NaN or infinite values \(first at frame 17"):
        evaluate_stream(model, from_segments([(frames, 1)], None, 10.0, "r"), 12, 4)
    torch.manual_seed(0)
    sharnn = build_model(ShaRNNConfig(kind="sharnn", input_size=3, num_classes=3,
                                      brick_size=4, hidden_size=4, upper_hidden_size=4))
    short = from_segments([(np.zeros((3, 3)), 1)], None, 10.0, "r")  # less than one brick
    with pytest.raises(KilomlError, match=r"3 frames, shorter than one window of 3 bricks"):
        evaluate_stream(sharnn, short, 12, 4)
    with pytest.raises(KilomlError, match="--hop must be its brick size 4, got 3"):
        evaluate_stream(sharnn, short, 12, 3)
    protonn = build_model(ProtoNNConfig(kind="protonn", input_size=3, num_classes=3))
    with pytest.raises(KilomlError, match="protonn takes feature vectors, not sequences"):
        evaluate_stream(protonn, short, 1, 1)


def _npz(path):
    d = synthetic_splits(classes=4)
    np.savez(path, X_train=d.train.x, y_train=d.train.y, X_test=d.test.x, y_test=d.test.y,
             class_names=np.array(["_silence_", "a", "b", "c"]))
    return path


def test_eval_stream_of_a_run(tmp_path, capsys):
    data = _npz(tmp_path / "c4.npz")
    out = tmp_path / "run"
    assert main(["train", "--dataset", str(data), "--hidden-size", "8", "--epochs", "3",
                 "--folds", "0", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["eval", str(out), "--stream", "--hop", "4", "--gap", "2",
                 "--target", "none"]) == 0
    printed = capsys.readouterr().out
    # 32 test clips of 12 frames, ~1/4 noise: about 24 events, 2 noise clips around each
    events = int((np.load(data)["y_test"] != 0).sum())
    frames = 12 * (events + 2 * (events + 1))
    assert f"a stream of {frames:,} frames" in printed
    assert f"decisions: {(frames - 12) // 4 + 1:,}, one every 4 frames" in printed
    assert f"of {events} detected" in printed and "per hour" in printed
    assert main(["eval", str(out), "--hop", "4"]) == 1
    assert "--hop apply to --stream only" in error_line(capsys)


def _emi(threshold: float):
    torch.manual_seed(0)
    model = build_model(EMIConfig(kind="emi-fastgrnn", input_size=3, num_classes=3,
                                  hidden_size=6, instance_width=6, instance_stride=4,
                                  exit_threshold=threshold))
    with torch.no_grad():
        model.head.weight.mul_(6.0)
    return model.eval()


def test_emi_decides_per_instance_with_early_exit_and_the_longest_run():
    """Windows of 14 frames: 3 instances of 6 frames every 4; a decision at every instance
    from the third on, on the last (3 - 1) * 4 + 6 = 14 frames."""
    model = _emi(0.6)
    frames = 2 * np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    ends, classes, read = emi_stream_decisions(model, frames, 14)
    instance_ends = np.arange(5, 50, 4)
    assert np.array_equal(ends, instance_ends[2:]) and np.array_equal(
        ends, decision_frames(50, 14, 4))
    x = np.stack([frames[e - 5:e + 1] for e in instance_ends])
    with torch.no_grad():
        logits = model.step_logits(torch.from_numpy(x)).double().numpy()
    margin = np.log(0.6 / 0.4)
    for i, steps in enumerate(read):  # each instance stops at its first crossing
        top2 = np.sort(logits[i], axis=1)[:, -2:]
        crossed = np.flatnonzero(top2[:, 1] - top2[:, 0] >= margin)
        assert steps == (crossed[0] + 1 if len(crossed) else 6)
    assert 1 <= read.mean() < 6  # early exit fires on this model
    instance = [int(np.argmax(logits[i, s - 1])) for i, s in enumerate(read)]
    expected = []
    for j in range(2, len(instance)):
        last3 = instance[j - 2:j + 1]  # the longest run of a class other than noise (3)
        runs = [(sum(1 for _ in g), c) for c, g in itertools.groupby(last3)]
        best = max((n for n, c in runs if c != 3), default=0)
        expected.append(next((c for n, c in runs if c != 3 and n == best), 3))
    assert classes.tolist() == expected
    _, _, full = emi_stream_decisions(_emi(1.0), frames, 14)
    assert (full == 6).all()  # a threshold of 1 reads every step
    stream = from_segments([(frames[:25], 0), (frames[25:], 1)], None, 10.0, "r")
    metrics = evaluate_stream(model, stream, 14, 4)
    assert (metrics["steps"], metrics["decisions"], metrics["instances"]) == (14, 10, 12)
    assert metrics["steps_per_instance"] == pytest.approx(read.mean())
    with pytest.raises(KilomlError, match="--hop must be its instance stride 4, got 3"):
        evaluate_stream(model, stream, 14, 3)


def test_eval_stream_of_an_emi_run(tmp_path, capsys):
    data = _npz(tmp_path / "c4.npz")
    out = tmp_path / "emi"
    assert main(["train", "--dataset", str(data), "--model", "emi-fastgrnn", "--hidden-size",
                 "8", "--epochs", "3", "--rounds", "1", "--instance-width", "6",
                 "--instance-stride", "3", "--exit-threshold", "0.6", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["eval", str(out), "--stream", "--target", "none"]) == 0
    printed = capsys.readouterr().out
    # windows of 12 frames: 3 instances of 6 every 3, deciding on the last 12 frames
    assert "one every 3 frames on the last 12;" in printed
    assert "early exit: " in printed and "steps on average (float model)" in printed
    assert main(["eval", str(out), "--stream", "--hop", "4", "--target", "none"]) == 1
    assert "--hop must be its instance stride 3, got 4" in error_line(capsys)


def test_an_emi_window_of_noise_is_scored_as_the_streams_noise_class():
    model = _emi(0.6)
    with torch.no_grad():  # every instance says noise (class 3)
        model.head.weight.zero_()
        model.head.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 5.0]))
    frames = np.zeros((30, 3), dtype=np.float32)
    quiet = evaluate_stream(model, from_segments([(frames, 0)], 0, 10.0, "r"), 14, 4)
    assert (quiet["accuracy"], quiet["onsets"]) == (1.0, 0)  # noise 3 -> the stream's 0
    none = evaluate_stream(model, from_segments([(frames, 0)], None, 10.0, "r"), 14, 4)
    assert (none["accuracy"], none["false_alarms"]) == (0.0, 1)
