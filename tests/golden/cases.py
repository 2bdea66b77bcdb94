"""The golden cases: which models are frozen and the data each is calibrated and tested on.

* ``helpers``: the synthetic FastGRNN/FastRNN models of the deployment tests (6 features,
  24 steps, 5 classes, hidden 16 unless set; random weights keeping ``keep`` of every matrix);
* ``cost``: the synthetic models of ``benchmarks/cortex_m_cost.py`` (6 features, 128 steps,
  7 classes, hidden 32, sigmoid gate and relu update unless set);
* ``trained``: the README's runs, ``demo`` (``make demo``) and ``kws-h64`` (the speech command).
"""

from pathlib import Path

import numpy as np

FEATURE_SCALE = np.array([1.0, 2.0, 3.0, 50.0, 60.0, 70.0])
FEATURE_OFFSET = np.array([0.0, 1.0, 9.0, 0.0, 0.0, 5.0])
CALIBRATION_SAMPLES = 512
TRAINED_TEST_INPUTS = 32


def synthetic_data(count: int, seed: int, steps: int, features: int = 6,
                   classes: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Raw features ``[count, steps, features]`` with very different per-feature scales."""
    rng = np.random.default_rng(seed)
    X = (rng.normal(size=(count, steps, features)) * np.resize(FEATURE_SCALE, features)
         + np.resize(FEATURE_OFFSET, features))
    return X.astype(np.float32), rng.integers(0, classes, size=count)


def _helpers(bits: int, **settings) -> dict:
    return {"source": "helpers", "bits": bits, "settings": settings}


def _cost(bits: int, keep: float, **config) -> dict:
    return {"source": "cost", "bits": bits, "keep": keep, "config": config}


CASES = {
    # trained runs of the README
    "demo-int16": {"source": "trained", "run": "demo", "dataset": "smartwatch", "bits": 16},
    "demo-int8": {"source": "trained", "run": "demo", "dataset": "smartwatch", "bits": 8},
    "kws-h64-int16": {"source": "trained", "run": "kws-h64", "dataset": "speech-commands-12",
                      "data_dir": "speech_commands", "bits": 16, "test_inputs": 8},
    "kws-h64-int8": {"source": "trained", "run": "kws-h64", "dataset": "speech-commands-12",
                     "data_dir": "speech_commands", "bits": 8, "test_inputs": 8},
    # the variants every C target is checked on (tests/deploy/deploy_helpers.VARIANTS)
    "fastgrnn-int16": _helpers(16),
    "fastgrnn-lowrank-mean-int8": _helpers(8, w_rank=3, u_rank=6, readout="mean"),
    "fastrnn-int16": _helpers(16, kind="fastrnn"),
    "fastgrnn-quant-int8": _helpers(8, gate_nonlinearity="quantSigm",
                                    update_nonlinearity="quantTanh"),
    "fastgrnn-relu-lowrank-int16": _helpers(16, update_nonlinearity="relu", u_rank=4,
                                            readout="mean"),
    "fastgrnn-relu-gate-int16": _helpers(16, gate_nonlinearity="relu", w_rank=2),
    "fastgrnn-stack4-int8": _helpers(8, frame_stack=4, w_rank=3, u_rank=6),
    # the speech model's shape (kws-h64) with FastGRNN's own deployment activations
    "speech-quant-int8": _helpers(8, input_size=32, hidden_size=64, num_classes=12, steps=99,
                                  u_rank=16, readout="mean", gate_nonlinearity="quantSigm",
                                  update_nonlinearity="quantTanh"),
    "speech-quant-int16": _helpers(16, input_size=32, hidden_size=64, num_classes=12, steps=99,
                                   u_rank=16, readout="mean", gate_nonlinearity="quantSigm",
                                   update_nonlinearity="quantTanh"),
    "speech-quant-relu-int8": _helpers(8, input_size=32, hidden_size=64, num_classes=12,
                                       steps=99, u_rank=16, readout="mean",
                                       gate_nonlinearity="quantSigm",
                                       update_nonlinearity="relu"),
    "speech-quant-dense-int8": _helpers(8, keep=1.0, input_size=32, hidden_size=64,
                                        num_classes=12, steps=99, u_rank=16, readout="mean",
                                        gate_nonlinearity="quantSigm",
                                        update_nonlinearity="quantTanh"),
    "speech-quant-dense-int16": _helpers(16, keep=1.0, input_size=32, hidden_size=64,
                                         num_classes=12, steps=99, u_rank=16, readout="mean",
                                         gate_nonlinearity="quantSigm",
                                         update_nonlinearity="quantTanh"),
    # shape extremes
    "smallest": _helpers(16, input_size=1, hidden_size=1, num_classes=2, steps=1),
    "rank-one-int8": _helpers(8, input_size=3, hidden_size=4, num_classes=2, steps=2, w_rank=1,
                              u_rank=1, readout="mean"),
    "wide-int16-u16-index": _helpers(16, hidden_size=300, keep=0.02, steps=4),
    "wide-int8-fastrnn": _helpers(8, hidden_size=300, keep=0.02, steps=4, kind="fastrnn"),
    "wide-int8-u16-index": _helpers(8, hidden_size=300, keep=0.02, steps=4),
    "frame-stack-8-int8": _helpers(8, frame_stack=8, steps=24, w_rank=3, u_rank=4),
    # every storage and kernel
    "int8-under-8-weights": _helpers(8, keep=1.0, input_size=1, hidden_size=3, u_rank=2),
    "int8-rank-2-of-4": _helpers(8, keep=1.0, input_size=4, hidden_size=9, w_rank=2, u_rank=3),
    "int8-5-and-4-columns": _helpers(8, keep=1.0, input_size=5, hidden_size=4, u_rank=4),
    "int8-7-and-6-columns": _helpers(8, keep=1.0, input_size=7, hidden_size=12, u_rank=6),
    "int8-1-and-8-columns": _helpers(8, keep=1.0, input_size=8, hidden_size=20, w_rank=1,
                                     u_rank=8),
    "int8-low-rank-dense": _helpers(8, keep=1.0, w_rank=3, u_rank=6),
    "int16-dense-low-rank": _helpers(16, keep=1.0, u_rank=6),
    "int16-csr": _helpers(16, keep=0.3),
    "int8-rows-over-511": _helpers(8, keep=0.01, hidden_size=520, steps=2),
    # benchmarks/cortex_m_cost.py
    "cost-default-int16": _cost(16, 0.5, u_rank=8),
    "cost-default-int8": _cost(8, 0.5, u_rank=8),
    "cost-dense-int16": _cost(16, 1.0),
    "cost-tanh-int16": _cost(16, 0.5, u_rank=8, update_nonlinearity="tanh"),
    "cost-stack8-int8": _cost(8, 1.0, frame_stack=8, hidden_size=120, w_rank=8, u_rank=6),
}


def case_shape(case: dict) -> dict:
    """``steps``, ``features`` and ``classes`` of a synthetic case."""
    if case["source"] == "cost":
        return {"steps": 128, "features": 6, "classes": 7}
    s = case["settings"]
    return {"steps": s.get("steps", 24), "features": s.get("input_size", 6),
            "classes": s.get("num_classes", 5)}


def synthetic_calibration(case: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X_calib, X_test, y_test)`` of a synthetic case (what its export was given)."""
    shape = case_shape(case)
    X_calib, _ = synthetic_data(48, seed=1, **shape)
    X_test, y_test = synthetic_data(40 if case["source"] == "helpers" else 8, seed=2, **shape)
    return X_calib, X_test, y_test


def trained_data(case: dict, shared_data: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X_calib, X_test, y_test)`` of a trained case, as ``kiloml export`` loads them (the
    first 512 training sequences calibrate); ``X_test`` is cut to the stored inputs."""
    from kiloml.data import load_dataset

    data_dir = shared_data / case["data_dir"] if "data_dir" in case else None
    splits = load_dataset(case["dataset"], data_dir)
    count = case.get("test_inputs", TRAINED_TEST_INPUTS)
    return splits.train.x[:CALIBRATION_SAMPLES], splits.test.x[:count], splits.test.y[:count]


def calibration_data(case: dict, runs_dir: Path, work: Path):
    """``(run_dir, X_calib, X_test, y_test)`` for freezing ``case``: a trained run from
    ``runs_dir``, or a synthetic run made in ``work`` as the tests and benchmark make it."""
    if case["source"] == "trained":
        from tests.conftest import SHARED_DATA as shared
        return (runs_dir / case["run"], *trained_data(case, shared))
    if case["source"] == "helpers":
        from tests.deploy.deploy_helpers import make_run

        settings = dict(case["settings"])
        run_dir = make_run(work / "run", **settings)
    else:
        import sys

        sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
        from cortex_m_cost import make_run as make_cost_run

        run_dir = make_cost_run(work / "run", case["config"], case["keep"])
    return (run_dir, *synthetic_calibration(case))


def extreme_inputs(steps: int, features: int) -> np.ndarray:
    """All-minimum, all-maximum, alternating extremes and one seeded random int16 input."""
    shape = (steps, features)
    alternating = np.where(np.indices(shape).sum(0) % 2 == 0, -32768, 32767)
    random = np.random.default_rng(7).integers(-32768, 32768, size=shape)
    return np.stack([np.full(shape, -32768), np.full(shape, 32767), alternating,
                     random]).astype(np.int16)
