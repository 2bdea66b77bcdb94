"""Fixtures of the deployment tests: exported models and toolchain requirements."""

import os
from pathlib import Path

import pytest

from kiloml.deploy.toolchain import APT_INSTALL, CORTEX_M_TOOLS, missing_tools

from .deploy_helpers import VARIANTS, make_export


@pytest.fixture(scope="session")
def exports(tmp_path_factory) -> dict[str, Path]:
    """One export directory per entry of ``VARIANTS``."""
    return {name: make_export(tmp_path_factory.mktemp(name), **settings)
            for name, settings in VARIANTS.items()}


@pytest.fixture
def require_cortex_m():
    """Skip when the Cortex-M toolchain is missing, except in CI (CI=true), where it fails."""
    missing = missing_tools(CORTEX_M_TOOLS)
    if missing:
        message = f"{', '.join(missing)} not found; install with: {APT_INSTALL}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
