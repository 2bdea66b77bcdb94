"""Raw PCM → label: ``kiloml_predict_pcm`` computes exactly what ``simulate_pcm`` does, on the
host (address and undefined-behaviour sanitizers) and on emulated Cortex-M4, at 16 and 8 kHz,
on real recordings and on extreme signals; and export writes the PCM path for audio runs only.
"""

import json

import numpy as np
import pytest

from kiloml.data.logmel import LogMelConfig, log_mel
from kiloml.deploy.export import TEST_PCM_FILE, export_run
from kiloml.deploy.pcm_verify import pcm_build, run_pcm
from kiloml.errors import KilomlError
from kiloml.ir.pcm import features_to_input, simulate_pcm, simulate_pcm_batch
from kiloml.ir.serialize import load_graph
from kiloml.ir.simulate import simulate
from kiloml.ops.logmel import log_mel_q10, make_tables

from ..audio_clips import extreme_signals, real_clips
from .deploy_helpers import make_export, make_run, synthetic_data

STEPS, MELS = 99, 32
RATES = {"16k": 16000, "8k": 8000}


def _one_second(signal: np.ndarray, rate: int) -> np.ndarray:
    """``signal`` repeated or cut to one second."""
    return np.resize(signal, rate).astype(np.int16)


def extreme_clips(rate: int) -> dict[str, np.ndarray]:
    """One-second extreme signals: silence, full-scale squares, int16 min/max, noise, 1 LSB."""
    signals = extreme_signals(rate)
    return {name: _one_second(signals[name], rate)
            for name in ("silence", "square-full-scale", "square-nyquist", "int16-min",
                         "int16-max", "white-noise", "one-lsb")}


def _real(rate: int, count: int) -> tuple[list[np.ndarray], str | None]:
    """Real one-second clips, or ``([], reason)`` when the shared archive is absent."""
    try:
        return [_one_second(x, rate) for _, x in real_clips(rate, count)], None
    except pytest.skip.Exception as e:
        return [], str(e)


def _audio_export(root, rate: int, calibration_scale: float) -> tuple:
    """A synthetic-weight FastGRNN (32 features × 99 steps, hidden 16, U rank 4) whose run says
    it was trained at ``rate``, calibrated on log-mel features × ``calibration_scale`` (which
    sets the model's input Q-format, so the Q10 → input shift), with two real clips stored."""
    run_dir = make_run(root / "run", steps=STEPS, input_size=MELS, num_classes=6, u_rank=4)
    config = json.loads((run_dir / "config.json").read_text())
    config["data"]["sample_rate"] = rate
    (run_dir / "config.json").write_text(json.dumps(config))
    calib = np.stack([log_mel(x, rate) for x in extreme_clips(rate).values()])
    calib = calib * calibration_scale
    real, _ = _real(rate, 2)
    clips = np.stack(real) if real else None
    labels = None if clips is None else np.arange(len(clips))
    X_test = calib[:4]
    export_run(run_dir, root / "export", X_calib=calib, X_test=X_test, y_test=np.zeros(4),
               pcm_test=clips, pcm_labels=labels)
    out = root / "export"
    return out, load_graph(out / "quantized_model.npz"), make_tables(LogMelConfig(rate))


@pytest.fixture(scope="module")
def audio_exports(tmp_path_factory) -> dict:
    """``name → (export dir, integer graph, LogMelTables)``: at 16 kHz an input format below
    Q10 (right shift), at 8 kHz above it (saturating left shift)."""
    return {"16k": _audio_export(tmp_path_factory.mktemp("pcm16k"), 16000, 4.0),
            "8k": _audio_export(tmp_path_factory.mktemp("pcm8k"), 8000, 0.25)}


@pytest.fixture(scope="module")
def host_builds(audio_exports, tmp_path_factory) -> dict:
    """Lazily built sanitized host harnesses, one per export."""
    built = {}

    def build(name: str):
        if name not in built:
            built[name] = pcm_build(audio_exports[name][0], "host",
                                    tmp_path_factory.mktemp(f"host{name}"), "sanitize")
        return built[name]

    return build


def test_input_shifts_cover_both_directions(audio_exports):
    assert (audio_exports["16k"][1].values["x"].frac_bits < 10
            < audio_exports["8k"][1].values["x"].frac_bits)


@pytest.mark.parametrize("name", sorted(RATES))
def test_simulate_pcm_is_front_end_conversion_model(audio_exports, name):
    _, q, tables = audio_exports[name]
    shift = 10 - q.values["x"].frac_bits
    for x in extreme_clips(RATES[name]).values():
        q10 = log_mel_q10(x, tables).astype(np.int64)
        if shift > 0:
            expected = (q10 + (1 << (shift - 1))) >> shift
        else:
            expected = np.clip(q10 << -shift, -32768, 32767)
        converted = features_to_input(q, q10)
        assert converted.dtype == np.int16 and np.array_equal(converted, expected)
        assert np.array_equal(simulate_pcm(q, tables, x), simulate(q, converted[None])[0])
    with pytest.raises(KilomlError, match="frames; the model runs 99 steps"):
        simulate_pcm(q, tables, np.zeros(RATES[name] // 2, dtype=np.int16))


def test_export_writes_the_pcm_path_for_audio_runs_only(audio_exports, tmp_path):
    out, q, tables = audio_exports["8k"]
    info = json.loads((out / "export.json").read_text())
    pcm = info["pcm"]
    assert (pcm["sample_rate"], pcm["samples"], pcm["frames"]) == (8000, 8000, STEPS)
    assert pcm["input_shift"] == 10 - q.values["x"].frac_bits
    assert pcm["logmel_work_bytes"] == 1288 and pcm["features_bytes"] == 2 * STEPS * MELS
    for file in pcm["files"]:
        assert (out / file).is_file(), file
    assert "#define KILOML_LOGMEL_SAMPLE_RATE 8000" in (out / "kiloml_logmel_tables.h").read_text()
    if "test_count" in pcm:
        with np.load(out / TEST_PCM_FILE) as data:
            assert np.array_equal(data["simulated_logits"],
                                  simulate_pcm_batch(q, tables, data["pcm"]))
    plain = make_export(tmp_path, steps=8)
    assert "pcm" not in json.loads((plain / "export.json").read_text())
    assert not (plain / "kiloml_pcm.c").exists() and not (plain / TEST_PCM_FILE).exists()
    X, y = synthetic_data(4, seed=0, steps=8)
    with pytest.raises(KilomlError, match="trained on audio"):
        export_run(tmp_path / "run", tmp_path / "again", X_calib=X, X_test=X, y_test=y,
                   pcm_test=np.zeros((1, 16000), dtype=np.int16), pcm_labels=[0])


@pytest.mark.parametrize("name", sorted(RATES))
def test_host_equals_simulator(audio_exports, host_builds, name, require_gcc):
    out, q, tables = audio_exports[name]
    rate = RATES[name]
    real, absent = _real(rate, 4)
    pcm = np.stack(real + list(extreme_clips(rate).values()))
    expected = simulate_pcm_batch(q, tables, pcm)
    executable = host_builds(name)
    for poison in (None, 0xA5):  # a poisoned work area shows that no stale state is read
        report = run_pcm(executable, pcm, q.meta["num_classes"], poison=poison)
        assert np.array_equal(report["logits"], expected)
        assert np.array_equal(report["classes"], expected.argmax(1))
    # a length that does not give 99 frames is refused
    report = run_pcm(executable, pcm[:1, :rate // 2], q.meta["num_classes"])
    assert report["classes"].tolist() == [-1]
    if absent:
        pytest.skip(f"extreme signals only: {absent}")


def test_host_equals_stored_simulator_logits(audio_exports, host_builds, require_gcc):
    out, q, _ = audio_exports["16k"]
    if not (out / TEST_PCM_FILE).exists():
        pytest.skip("no real clips were stored (shared data archive absent)")
    with np.load(out / TEST_PCM_FILE) as data:
        report = run_pcm(host_builds("16k"), data["pcm"], q.meta["num_classes"])
        assert np.array_equal(report["logits"], data["simulated_logits"])


@pytest.mark.parametrize("name", sorted(RATES))
def test_cortex_m4_equals_simulator(audio_exports, name, tmp_path, require_cortex_m):
    out, q, tables = audio_exports[name]
    rate = RATES[name]
    extremes = extreme_clips(rate)
    real, absent = _real(rate, 2)
    pcm = np.stack(real + [extremes["silence"], extremes["square-full-scale"]])
    counting = name == "16k"
    report = run_pcm(pcm_build(out, "cortex-m4", tmp_path), pcm, q.meta["num_classes"],
                     count_from="kiloml_predict_pcm" if counting else None)
    expected = simulate_pcm_batch(q, tables, pcm)
    assert np.array_equal(report["logits"], expected)
    assert np.array_equal(report["classes"], expected.argmax(1))
    assert 0 < report["stack_bytes_measured"] <= 4096
    if counting:
        # the front end is about 96k instructions per frame at 16 kHz (far fewer for silence)
        *sounds, silence, square = report["instructions"]
        assert all(5e6 < count < 3e7 for count in sounds + [square]) and 0 < silence < square
    if absent:
        pytest.skip(f"extreme signals only: {absent}")


def test_frame_stacked_audio_run_exports_without_the_pcm_path(tmp_path):
    """The on-device front end hands the model one frame per step, so a run that stacks frames
    gets the feature entry point only, with the reason in export.json."""
    run_dir = make_run(tmp_path / "run", steps=STEPS, input_size=MELS, num_classes=6, u_rank=4,
                       frame_stack=3)
    config = json.loads((run_dir / "config.json").read_text())
    config["data"]["sample_rate"] = 16000
    (run_dir / "config.json").write_text(json.dumps(config))
    X, y = synthetic_data(8, seed=0, steps=STEPS, features=MELS, classes=6)
    info = export_run(run_dir, tmp_path / "export", X_calib=X, X_test=X, y_test=y)
    assert "pcm" not in info and info["pcm_skipped"] == (
        "the front end feeds one frame per step, the model stacks 3 frames per step")
    assert (info["steps"], info["input_size"]) == (STEPS // 3, 3 * MELS)
