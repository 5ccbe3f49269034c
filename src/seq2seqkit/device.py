"""Where the tensors live and what the processor offers, detected rather than assumed.

``resolve_device`` turns the one device setting (``auto``, ``cpu``, ``cuda``, ``cuda:N``) into a
``torch.device``; ``autocast_dtype`` says which low precision a device computes in. Everything
else follows the device of the model's parameters or of its input.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import re
import resource
from pathlib import Path

import torch

from seq2seqkit.errors import ConfigError

DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")


def resolve_device(name: str) -> torch.device:
    """``auto``: the first GPU when CUDA is available, else the CPU; ``cuda`` / ``cuda:N`` must exist."""
    if not DEVICE_PATTERN.fullmatch(name):
        raise ConfigError(f"device {name!r} is not one of auto, cpu, cuda, cuda:N")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r}: this machine (or this torch build) has no CUDA GPU")
        count = torch.cuda.device_count()
        if (device.index or 0) >= count:
            raise ConfigError(f"device {name!r}: only {count} GPU(s) here (cuda:0 .. cuda:{count - 1})")
    return device


def autocast_dtype(device: torch.device, precision: str, training: bool = False) -> torch.dtype | None:
    """The dtype the matmuls run in under autocast for a configured precision (auto, float32,
    bfloat16, float16), or None for float32 throughout.

    auto: on a GPU bfloat16 where it computes it (Ampere and later), else float16 (which training
    pairs with a gradient scaler); on the CPU bfloat16 where it is native, else float32.
    ``training``: bfloat16 on a CPU whose LSTM cannot autocast to it is refused in one line
    (decoding casts the weights instead, which works on any CPU)."""
    if precision == "float32":
        return None
    if device.type == "cuda":
        if precision == "auto":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if precision == "bfloat16" else torch.float16
    if precision == "float16":
        raise ConfigError("precision float16 is for GPUs; on the CPU use bfloat16 or auto")
    if not use_bfloat16(precision):
        return None
    if training and not lstm_autocasts_to_bfloat16():
        raise ConfigError(
            "precision bfloat16: this CPU cannot train an LSTM in bfloat16 (oneDNN refuses it without "
            "AVX-512); use auto or float32"
        )
    return torch.bfloat16


@functools.cache
def lstm_autocasts_to_bfloat16() -> bool:
    """Whether torch's fused LSTM runs under CPU bfloat16 autocast here: oneDNN refuses it on CPUs
    without AVX-512 (seen on an AVX2-only EPYC: "could not create a primitive descriptor")."""
    lstm = torch.nn.LSTM(2, 2, batch_first=True)
    try:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            lstm(torch.zeros(1, 1, 2))
    except RuntimeError:
        return False
    return True


@functools.cache
def native_bfloat16() -> bool:
    """True when the CPU computes bfloat16 natively (AMX or AVX-512 BF16), so autocast pays off."""
    if platform.system() != "Linux":
        return False
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next(
        (line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), []
    )
    return "amx_bf16" in flags or "avx512_bf16" in flags


def use_bfloat16(precision: str) -> bool:
    """Resolve a configured precision ("auto", "float32" or "bfloat16") to: compute in bfloat16?"""
    return precision == "bfloat16" or (precision == "auto" and native_bfloat16())


@functools.cache
def configure_memory() -> None:
    """Process-wide memory settings that make CPU training fast without growing; call it before
    the first tensor operation.

    - glibc's malloc keeps large freed blocks for reuse instead of returning them to the OS. Every
      step allocates and frees the same large tensors; handed back, each comes back as fresh pages
      whose first touch costs more than the arithmetic on them (a 64 MB bfloat16 -> float32 copy:
      17 ms that way, 3 ms with reuse). ``release_free_memory`` hands them back every few steps.
    - oneDNN, which runs the fused LSTM and bfloat16 matmuls, caches a kernel with its buffers for
      every new input shape, up to 1,024 of them, and PyTorch's oneDNN wrapper (ideep) keeps its
      own cache of as many; batches of varying shapes made them grow by gigabytes over a run. 32
      entries each keep the shapes of the batch at hand (the decoder's step loop reuses them
      thousands of times) at the same speed: matched en-de model, 200 steps, peak RSS 1,433 MB
      with 128 and 1,024 entries, 894 MB with 32 each. A value the user set is kept.
    A no-op for the first where the C library is not glibc.
    """
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "32")
    os.environ.setdefault("LRU_CACHE_CAPACITY", "32")  # ideep's cache
    libc = _glibc()
    if libc is not None:
        libc.mallopt(M_MMAP_THRESHOLD, 1 << 30)  # serve large blocks from the heap, not mmap
        libc.mallopt(M_TRIM_THRESHOLD, 1 << 31)  # and do not give the heap's top back on free


def release_free_memory() -> None:
    """Give the pages of freed heap blocks back to the OS (glibc's ``malloc_trim``).

    With the settings of ``configure_memory`` the heap keeps every freed block, and batches of
    varying shapes leave it fragmented: after 300 steps of the matched en-de model, 1.4 of a
    1.9 GB heap were free blocks, still resident. Called every few steps, this keeps resident
    memory closer to what is in use; the page faults it costs are spread over those steps.
    """
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 - glibc has both; musl and others may not
    except (OSError, AttributeError):
        return None
    return libc


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's malloc.h


def peak_memory_mb() -> int:
    """Peak resident memory of this process so far, in MB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
