"""Processor detection and the process-wide memory settings."""

import ctypes
import os

import pytest
import torch

from seq2seq.device import configure_memory, release_free_memory, use_bfloat16


def _resident_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_precision_setting_resolves():
    assert use_bfloat16("bfloat16")
    assert not use_bfloat16("float32")


def _glibc_available() -> bool:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return False
    return os.path.exists("/proc/self/statm")


@pytest.mark.skipif(not _glibc_available(), reason="needs glibc and /proc")
def test_freed_blocks_stay_resident_until_released():
    configure_memory()  # large blocks from the heap, kept there after free
    block = torch.ones(64 * 2**20 // 4 * 4)  # 256 MB, every page touched
    del block
    kept = _resident_mb()
    release_free_memory()
    assert kept - _resident_mb() > 200
