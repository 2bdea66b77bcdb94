"""Fixtures of the deployment tests: exported models."""

from pathlib import Path

import pytest

from .deploy_helpers import VARIANTS, make_export


@pytest.fixture(scope="session")
def exports(tmp_path_factory) -> dict[str, Path]:
    """One export directory per entry of ``VARIANTS``."""
    return {name: make_export(tmp_path_factory.mktemp(name), **settings)
            for name, settings in VARIANTS.items()}
