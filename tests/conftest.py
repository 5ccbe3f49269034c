"""Shared fixtures: seeded torch, paths to the real data beside the checkout (when present)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


# The test models are tiny: one thread is fastest, and extra threads only wait on a busy machine.
# Subprocesses (CLI tests) inherit the environment variable.
os.environ["OMP_NUM_THREADS"] = "1"


@pytest.fixture(autouse=True)
def _seeded_one_thread() -> Iterator[None]:
    """Each test starts seeded on one thread, whatever the previous test (or seq2seqkit.train) set."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    yield


def shared_folder(name: str, probe: str) -> Path:
    """../shared/data/NAME, or skip the test when the shared data is absent."""
    path = SHARED_DATA / name
    if not (path / probe).is_file():
        pytest.skip("../shared/data is not present")
    return path


@pytest.fixture
def debian_en_de() -> Path:
    return shared_folder("debian/en-de", "train.en")


@pytest.fixture
def debian_summarize() -> Path:
    return shared_folder("debian/summarize", "test.src")
