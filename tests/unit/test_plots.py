"""Pictures with text in any script: a font that draws it where one is installed, else one warning."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from matplotlib import pyplot as plt

from seq2seqkit import plots

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
    said = [record.getMessage() for record in caplog.records if record.name == "seq2seqkit.plots"]
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


def test_a_long_source_is_wrapped_into_lines_that_keep_every_token_in_order() -> None:
    paragraph = [f"\u2581word{i}" if i % 3 else f"\u2581w{i}" for i in range(plots.LONG_SOURCE * 2)]
    lines = plots._wrap(paragraph)
    assert len(lines) > 1
    assert [index for line in lines for _, index, _ in line] == list(range(len(paragraph)))
    for line in lines:
        assert not line[0][2].startswith(" ") and line[0][0] == 0
        last_column, _, last_text = line[-1]
        assert last_column + len(last_text) <= plots.LINE_CHARACTERS
        assert all(
            column + len(text) == next_column
            for (column, _, text), (next_column, _, _) in zip(line, line[1:], strict=False)
        )
    assert plots._wrap(["x" * (plots.LINE_CHARACTERS + 5), "\u2581y"]) == [[(0, 0, "x" * 105)], [(0, 1, "y")]]
    # never inside a word: "natal" continues "\u2581pre", so both go to the next line
    words = ["\u2581" + "x" * (plots.LINE_CHARACTERS - 5), "\u2581pre", "natal"]
    assert plots._wrap(words)[1] == [(0, 1, "pre"), (3, 2, "natal")]


def test_a_long_source_is_drawn_as_a_paragraph_as_wide_as_a_page(tmp_path: Path) -> None:
    shapes = []
    for length in (150, 300):
        source = [f"\u2581tok{i}" for i in range(length)]
        weights = torch.softmax(torch.randn(3, length), dim=-1)
        plots.attention_heatmap(
            weights, source, ["tok7", "tok8"], tmp_path / "p.png", copy_gate=torch.rand(3)
        )
        shapes.append(plt.imread(tmp_path / "p.png").shape[:2])
    (short_height, short_width), (long_height, long_width) = shapes
    assert short_width == long_width < 1600  # a heatmap would grow a column per token
    assert long_height > short_height  # twice the text, more lines
