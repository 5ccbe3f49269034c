"""The model card's machine description: the CPU's model name and kind from /proc/cpuinfo."""

from __future__ import annotations

import platform

import pytest

from seq2seqkit import model_card
from seq2seqkit.model_card import cpu_flags, cpu_kind, cpu_model

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx avx2 avx512f avx512_bf16 amx_bf16 amx_tile
"""


@pytest.mark.parametrize(
    ("flags", "kind"),
    [
        ({"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}, "AMX"),
        ({"avx2", "avx512f", "avx512_bf16"}, "AVX-512 BF16"),
        ({"avx2", "avx512f"}, "AVX-512 (no BF16)"),
        ({"sse2", "avx", "avx2", "fma"}, "AVX2-only"),
    ],
)
def test_cpu_kind_names_the_best_bfloat16_instructions(flags: set[str], kind: str) -> None:
    assert cpu_kind(flags) == kind


def test_cpu_kind_without_avx2_names_the_architecture(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    assert cpu_kind(set()) == "no AVX2 (aarch64)"


def test_cpu_model_and_flags_are_read_from_cpuinfo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_card, "_cpuinfo", lambda: CPUINFO)
    assert cpu_model() == "Intel(R) Xeon(R) Platinum 8480+"
    assert cpu_kind(cpu_flags()) == "AMX"
    avx2_only = CPUINFO.replace(" avx512f avx512_bf16 amx_bf16 amx_tile", "")
    monkeypatch.setattr(model_card, "_cpuinfo", lambda: avx2_only)
    assert cpu_kind(cpu_flags()) == "AVX2-only"


def test_cpu_model_without_cpuinfo_asks_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_card, "_cpuinfo", lambda: "")
    monkeypatch.setattr(platform, "processor", lambda: "arm")
    assert cpu_model() == "arm" and cpu_flags() == set()
