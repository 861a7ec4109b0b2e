"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.paths import ROOT

SHARED_DATA = ROOT.parent / "shared" / "data"  # offline mirror of the public corpora


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The offline mirror of the public corpora (../shared/data); skip tests when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"real-data test: the corpus mirror {SHARED_DATA} is absent "
            "(only build/CI machines have it)"
        )
    return SHARED_DATA
