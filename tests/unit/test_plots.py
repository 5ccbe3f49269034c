"""Pictures with text in any script: a font that draws it where one is installed, else one warning."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from seq2seq import plots

JAPANESE = list("こんにちは")


def test_a_heatmap_of_japanese_warns_at_most_once_and_never_per_glyph(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(plots, "_warned_missing", False)
    weights = torch.softmax(torch.randn(len(JAPANESE) + 1, len(JAPANESE)), dim=-1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name in ("a.png", "b.png"):
            plots.attention_heatmap(weights, JAPANESE, JAPANESE, tmp_path / name, title="".join(JAPANESE))
    assert not caught  # no "Glyph ... missing from font" per character
    said = [record.getMessage() for record in caplog.records if record.name == "seq2seq.plots"]
    assert len(said) <= 1  # none where a font with kana is installed (fonts-noto-cjk), else one
    assert all("fonts-noto-cjk" in m for m in said)
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"


def test_an_installed_font_that_draws_the_characters_is_added(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plots, "_warned_missing", False)
    monkeypatch.setattr(plots, "_installed_fonts", lambda: [("Latin Only", "/l.ttf"), ("Kana", "/k.ttf")])
    real = plots._glyphs
    fake = {"/l.ttf": frozenset(range(128)), "/k.ttf": frozenset(map(ord, JAPANESE))}
    monkeypatch.setattr(plots, "_glyphs", lambda path: fake.get(path) or real(path))
    families = plots._font_families(["abc", *JAPANESE])
    assert families[1:] == ["Kana"] and families[0] == "DejaVu Sans"
    assert not plots._warned_missing
    assert plots._font_families(["abc"]) == ["DejaVu Sans"]
