"""Processor detection and the process-wide memory settings."""

import ctypes
import os

import pytest
import torch

from seq2seqkit.device import (
    autocast_dtype,
    configure_memory,
    lstm_autocasts_to_bfloat16,
    release_free_memory,
    resolve_device,
    use_bfloat16,
)
from seq2seqkit.errors import ConfigError
from seq2seqkit.tasks import task_config


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


def test_device_setting_resolves() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    for bad in ("gpu", "cuda:", "cuda:x", "tpu"):
        with pytest.raises(ConfigError, match="not one of auto, cpu, cuda, cuda:N"):
            resolve_device(bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cuda_on_a_machine_without_it_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        resolve_device("cuda:0")


def test_autocast_dtype_per_device_and_precision() -> None:
    cpu = torch.device("cpu")
    assert autocast_dtype(cpu, "float32") is None
    assert autocast_dtype(cpu, "bfloat16") == torch.bfloat16
    assert autocast_dtype(cpu, "auto") == (torch.bfloat16 if use_bfloat16("auto") else None)
    with pytest.raises(ConfigError, match="float16 is for GPUs"):
        autocast_dtype(cpu, "float16")


def test_training_in_bfloat16_where_the_lstm_cannot_is_a_clear_error() -> None:
    """AVX2-only CPUs: oneDNN's LSTM has no bfloat16 primitive there, so training would crash."""
    cpu = torch.device("cpu")
    if lstm_autocasts_to_bfloat16():
        assert autocast_dtype(cpu, "bfloat16", training=True) == torch.bfloat16
    else:
        with pytest.raises(ConfigError, match="cannot train an LSTM in bfloat16"):
            autocast_dtype(cpu, "bfloat16", training=True)
    assert autocast_dtype(cpu, "auto", training=True) == (torch.bfloat16 if use_bfloat16("auto") else None)


def test_config_refuses_an_unknown_device() -> None:
    with pytest.raises(ConfigError, match="training.device = 'gpu'"):
        task_config({"task": "reverse", "training": {"device": "gpu"}})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_cpu_model_generates_the_same_on_the_gpu(tmp_path) -> None:
    """Saved from one device, loaded on the other: float32 outputs agree up to rounding."""
    import seq2seqkit

    config = task_config(
        {
            "task": "reverse",
            "data": {"synthetic": {"train_size": 500, "eval_size": 20, "max_length": 8}},
            "model": {"embedding_size": 16, "encoder": {"hidden_size": 16}, "decoder": {"hidden_size": 32}},
            "training": {"device": "cpu", "precision": "float32", "max_steps": 60, "lr": 0.01},
        }
    )
    model_dir = seq2seqkit.train(config, tmp_path / "cpu")
    inputs = ["a b c d", "e f g h i j", "c a b"]
    on_cpu = seq2seqkit.load(model_dir, device="cpu").generate(inputs, beam=3)
    on_gpu = seq2seqkit.load(model_dir, device="cuda").generate(inputs, beam=3)
    assert [o.text for o in on_gpu] == [o.text for o in on_cpu]
    for a, b in zip(on_gpu, on_cpu, strict=True):
        assert abs(a.score - b.score) < 1e-4
