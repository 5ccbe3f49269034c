"""What the processor offers, detected rather than assumed."""

from __future__ import annotations

import functools
import platform
from pathlib import Path


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
