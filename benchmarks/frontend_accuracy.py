"""Accuracy of the log-mel front ends on real recordings: the float front end against
``python_speech_features`` 0.6, and the integer front end (the simulator of the C code, equal
to it bit for bit) against the float one. With ``--cortex-m``, also instructions per frame of
the C code on emulated Cortex-M4/M3 (checked bit-exact against the simulator on the way).

    python benchmarks/frontend_accuracy.py [--clips 50] [--cortex-m] [--data DIR]

Clips: a deterministic spread (``crc32(name) % 16 == 0``) of the Speech Commands v0.02 test set
(16 kHz) and the Free Spoken Digit Dataset (8 kHz), read from the archives in ``--data``
(default: ``shared/data`` next to the repository). Differences are natural-log units (nats);
"above floor" means the reference energy is above the floor ``1e-10`` of the float front end.
"""

import argparse
import io
import tarfile
import tempfile
import wave
import zlib
from pathlib import Path

import numpy as np

from kiloml.data.logmel import LogMelConfig, log_mel
from kiloml.ops.logmel import log_mel_q10, make_tables

ARCHIVES = {16000: Path("speech_commands") / "speech_commands_test_set_v0.02.tar.gz",
            8000: Path("fsdd") / "free-spoken-digit-dataset-26eb9aa.tar.gz"}
SPREAD = 16


def read_clips(archive: Path, count: int) -> list[np.ndarray]:
    """Up to ``count`` int16 WAVs of ``archive`` whose name hashes to 0 modulo ``SPREAD``."""
    clips = []
    with tarfile.open(archive) as tar:
        for member in tar:
            if len(clips) == count:
                break
            if (member.isfile() and member.name.endswith(".wav")
                    and zlib.crc32(member.name.encode()) % SPREAD == 0):
                with wave.open(io.BytesIO(tar.extractfile(member).read())) as w:
                    clips.append(np.frombuffer(w.readframes(w.getnframes()), dtype="<i2"))
    return [clip.astype(np.int16) for clip in clips]


def reference(x: np.ndarray, config: LogMelConfig) -> np.ndarray:
    """``python_speech_features`` log filterbank energies (``fbank`` with the same window)."""
    import python_speech_features as psf

    window = np.hamming if config.window == "hamming" else (lambda n: np.ones(n))
    energies, _ = psf.fbank(x / 32768.0, config.sample_rate, nfilt=config.n_mels,
                            nfft=config.n_fft, winfunc=window)
    return np.log(energies)


def row(name: str, clips: int, diff: np.ndarray, mask: np.ndarray) -> str:
    d = diff[mask]
    return (f"| {name} | {clips} | {mask.sum()} ({mask.mean():.0%}) | {d.max():.2e} | "
            f"{np.percentile(d, 99.9):.2e} | {d.mean():.2e} |")


def accuracy_tables(data: Path, count: int) -> None:
    header = ("| front end | clips | features above floor | max abs diff | 99.9th pct | mean |\n"
              "|---|---|---|---|---|---|")
    floor = np.log(LogMelConfig().floor)
    float_rows, integer_rows = [], []
    for sample_rate, archive in ARCHIVES.items():
        clips = read_clips(data / archive, count)
        for window in ("rectangular", "hamming"):
            config = LogMelConfig(sample_rate, window=window)
            tables = make_tables(config)
            name = f"{sample_rate // 1000} kHz, {window}"
            ref, ours, ints = [], [], []
            for x in clips:
                ref.append(reference(x, config).ravel())
                ours.append(log_mel(x, sample_rate, config).astype(np.float64).ravel())
                ints.append(log_mel_q10(x, tables).ravel() / 1024.0)
            ref, ours, ints = np.concatenate(ref), np.concatenate(ours), np.concatenate(ints)
            above = ref > floor
            float_rows.append(row(name, len(clips), np.abs(ours - ref), above))
            integer_rows.append(row(name, len(clips), np.abs(ints - ours), np.ones_like(above)))
    print("Float front end (kiloml.data.logmel.log_mel, float32 output) vs python_speech_features"
          " 0.6 logfbank/fbank:\n")
    print(header + "\n" + "\n".join(float_rows) + "\n")
    print("Integer front end (kiloml.ops.logmel.log_mel_q10 / 1024 = the C output) vs the "
          "float front end, all features:\n")
    print(header.replace("features above floor", "features") + "\n" + "\n".join(integer_rows))


def cortex_m_table(data: Path) -> None:
    from kiloml.deploy.logmel_verify import logmel_build, run_logmel

    print("\nC front end on QEMU (arm-none-eabi-gcc -O2), instructions per frame:\n")
    print("| target | config | frames | instructions per frame | bit-exact |\n"
          "|---|---|---|---|---|")
    for target in ("cortex-m4", "cortex-m3"):
        for sample_rate, archive in ARCHIVES.items():
            config = LogMelConfig(sample_rate)
            clips = read_clips(data / archive, 3)
            with tempfile.TemporaryDirectory() as tmp:
                build = logmel_build(Path(tmp), target, config, max_frames=400)
                features, counts = run_logmel(build, clips, count_instructions=True)
            tables = make_tables(config)
            exact = all(np.array_equal(f, log_mel_q10(x, tables))
                        for f, x in zip(features, clips, strict=True))
            frames = sum(config.num_frames(len(x)) for x in clips)
            print(f"| {target} | {sample_rate // 1000} kHz | {frames} | "
                  f"{sum(counts) / frames:,.0f} | {exact} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=50, help="clips per data set")
    parser.add_argument("--cortex-m", action="store_true", help="count instructions on QEMU")
    parser.add_argument("--data", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = parser.parse_args()
    accuracy_tables(args.data, args.clips)
    if args.cortex_m:
        cortex_m_table(args.data)


if __name__ == "__main__":
    main()
