"""Shared fixtures: a small synthetic sequence task that trains in seconds, and where the real
datasets are."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from kiloml.data.splits import DatasetSplits, Split

#: The real datasets: ``../shared/data`` next to the project, or ``$KILOML_SHARED_DATA`` (which
#: ``.ci/run`` sets for a clone made away from the project).
SHARED_DATA = Path(os.environ.get("KILOML_SHARED_DATA")
                   or Path(__file__).resolve().parents[2] / "shared" / "data")


def synthetic_splits(n_train=96, n_val=32, n_test=32, steps=12, features=3, classes=3,
                     seed=0) -> DatasetSplits:
    """Noisy sinusoids whose frequency and level are the class (learnable by any small RNN)."""
    rng = np.random.default_rng(seed)

    def make(n):
        y = rng.integers(0, classes, size=n)
        t = np.arange(steps)[None, :, None]
        phase = rng.uniform(0, 2 * np.pi, size=(n, 1, features))
        x = np.sin((y[:, None, None] + 1) * 0.5 * t + phase)
        x[:, :, 0] += y[:, None]  # a class-dependent level makes the task easy to learn
        x = x + 0.3 * rng.normal(size=(n, steps, features)) + 5.0
        return Split(x.astype(np.float32), y.astype(np.int64))

    return DatasetSplits("synthetic", make(n_train), make(n_val), make(n_test),
                         [f"c{i}" for i in range(classes)]).validate()


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """One ``KILOML_CACHE`` for the tests that read the same real dataset (decoding CIFAR-10's
    60,000 JPEGs takes ~15 s; it is done once per test session)."""
    return tmp_path_factory.mktemp("shared-cache")


@pytest.fixture
def tiny_data() -> DatasetSplits:
    return synthetic_splits()


@pytest.fixture
def require_gcc():
    """Skip without a host C compiler, except in CI (CI=true), where it fails."""
    if shutil.which("gcc") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("gcc not found")
        pytest.skip("gcc not found")


@pytest.fixture
def require_cortex_m():
    """Skip when the Cortex-M toolchain is missing, except in CI (CI=true), where it fails."""
    from kiloml.deploy.targets import TARGETS

    missing = TARGETS["cortex-m4"].missing()
    if missing:
        message = (f"{', '.join(missing)} not found; install with: "
                   f"{TARGETS['cortex-m4'].install_hint()}")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def require_avr():
    """Skip when the AVR toolchain or simavr is missing, except in CI (CI=true), where it
    fails."""
    from kiloml.deploy.targets import TARGETS

    missing = TARGETS["avr"].missing()
    if missing:
        message = f"{', '.join(missing)} not found; install with: {TARGETS['avr'].install_hint()}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
