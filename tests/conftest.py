"""Shared fixtures: seeded torch, paths to the real data beside the checkout (when present)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _seeded() -> None:
    torch.manual_seed(0)


@pytest.fixture
def debian_en_de() -> Path:
    """../shared/data/debian/en-de, or skip the test when the shared data is absent."""
    path = SHARED_DATA / "debian" / "en-de"
    if not (path / "train.en").is_file():
        pytest.skip("../shared/data is not present")
    return path
