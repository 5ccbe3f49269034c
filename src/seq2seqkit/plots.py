"""Pictures that explain a model: attention heatmaps and training curves (matplotlib, PNG)."""

from __future__ import annotations

import functools
import json
import logging
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib import font_manager, ft2font  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from seq2seqkit.errors import DataError  # noqa: E402
from seq2seqkit.metrics import METRICS  # noqa: E402

if TYPE_CHECKING:
    from seq2seqkit.data_size import Point

log = logging.getLogger(__name__)


def _label(token: str) -> str:
    """Make whitespace tokens visible on an axis."""
    return "␣" if token == " " else token


@functools.cache
def _glyphs(path: str) -> frozenset[int]:
    """The code points a font file draws."""
    try:
        return frozenset(ft2font.FT2Font(path).get_charmap())
    except (OSError, RuntimeError, ValueError):
        return frozenset()


def _installed_fonts() -> list[tuple[str, str]]:
    """(family, file) of each installed font, Noto first (it covers the most scripts); not
    matplotlib's Last Resort font, whose glyphs for every character are placeholder boxes."""
    fonts = {
        font.name: font.fname for font in font_manager.fontManager.ttflist if "Last Resort" not in font.name
    }
    return sorted(fonts.items(), key=lambda item: (not item[0].startswith("Noto"), item[0]))


_warned_missing = False


def _font_families(labels: Iterable[str]) -> list[str]:
    """matplotlib's font, then installed fonts that draw the labels' characters it cannot (e.g.
    Noto Sans CJK for Japanese); characters that no installed font draws are warned about once."""
    global _warned_missing
    default = font_manager.findfont(font_manager.FontProperties(family=plt.rcParams["font.family"]))
    families = [font_manager.FontProperties(fname=default).get_name()]
    missing = {c for label in labels for c in label if ord(c) not in _glyphs(default)}
    for family, path in _installed_fonts() if missing else []:
        drawn = {c for c in missing if ord(c) in _glyphs(path)}
        if drawn:
            families.append(family)
            missing -= drawn
        if not missing:
            break
    if missing and not _warned_missing:
        _warned_missing = True
        sample = "".join(sorted(missing)[:8])
        log.warning(
            "no installed font draws %d of the characters in the pictures (e.g. %r); they show as "
            "boxes (on Debian: apt-get install fonts-noto-cjk)",
            len(missing),
            sample,
        )
    return families


def attention_heatmap(
    weights: torch.Tensor,
    source: Sequence[str],
    output: Sequence[str],
    path: Path,
    title: str = "",
    copy_gate: torch.Tensor | None = None,
) -> None:
    """One PNG: output tokens (+ <eos>) down, source tokens across, weights as shades of blue;
    for a copying model a column on the right gives each step's p_gen (orange: generated from
    the vocabulary; white: copied from the source through the attention).

    weights: (len(output) + 1, len(source)), as returned with each generated hypothesis.
    """
    rows = [*map(_label, output), "</s>"]
    columns = [_label(t) for t in source]
    with plt.rc_context({"font.family": _font_families([*rows, *columns, title])}), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Glyph .* missing from font", UserWarning)  # said once above
        if len(columns) > LONG_SOURCE:
            # the attention the output's tokens (not its </s>) paid each source token, capped at 1
            paid = weights[: max(len(rows) - 1, 1)].sum(0).clamp(max=1.0)
            gates = None if copy_gate is None else copy_gate.reshape(-1).tolist()
            outputs = "  ".join(
                row if gates is None else f"{row} (p_gen {gates[step]:.2f})"
                for step, row in enumerate(rows[:-1])
            )
            _draw_paragraph(paid, list(source), path, title, f"output tokens: {outputs}")
        else:
            _draw_heatmap(weights, rows, columns, path, title, copy_gate)


# a source longer than this (a question's paragraph) is drawn as wrapped text, not as heatmap columns
LONG_SOURCE = 60
LINE_CHARACTERS = 100


def _wrap(source: list[str]) -> list[list[tuple[int, int, str]]]:
    """Source tokens as lines of at most LINE_CHARACTERS characters, broken between words only
    (a word: a token after a space and the pieces that continue it; a longer word alone on its
    line), each token as (column, index in source, text): SentencePiece's space mark becomes a
    space (word tokens get one each), and a line does not start with one."""
    words: list[list[tuple[int, str]]] = []
    spaced = any("\u2581" in token or " " in token for token in source)  # else word tokens
    for index, token in enumerate(source):
        text = token.replace("\u2581", " ") if spaced else f" {token}"
        if not words or text[:1].isspace():
            words.append([])
        words[-1].append((index, text))
    lines: list[list[tuple[int, int, str]]] = [[]]
    column = 0
    for word in words:
        if column + sum(len(text) for _, text in word) > LINE_CHARACTERS and lines[-1]:
            lines.append([])
            column = 0
        for index, text in word:
            if not lines[-1]:
                text = text.lstrip()
            lines[-1].append((column, index, text))
            column += len(text)
    return lines


def span_picture(boundaries: torch.Tensor, source: Sequence[str], answer: str, path: Path) -> None:
    """One PNG of a pointer reader's answer: the source as wrapped text, each token shaded by
    P_start + P_end (capped at 1), the answer in the title. boundaries: (2, len(source))."""
    with plt.rc_context({"font.family": _font_families([*source, answer])}), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Glyph .* missing from font", UserWarning)
        shades = boundaries.float().sum(0).clamp(max=1.0)
        caption = "shade: P(the answer starts here) + P(it ends here)"
        _draw_paragraph(shades, list(source), path, f"answer: {answer}", caption)


def _draw_paragraph(shades: torch.Tensor, source: list[str], path: Path, title: str, caption: str) -> None:
    """The source as wrapped text, each token on a shade of blue (``shades``: one value in 0-1 per
    token); the title, and the caption below it."""
    paid = shades.numpy()
    lines = _wrap(source)
    fig, ax = plt.subplots(figsize=(12.5, 1.4 + 0.3 * len(lines)), dpi=110)
    colours = plt.get_cmap("Blues")
    # each line is one string (drawn token by token, glyph extents would open gaps); the shades
    # are boxes behind the tokens' columns, light enough for black text, with the x axis scaled
    # to the width the renderer gives a character (hinting rounds it to whole pixels)
    size = ax.get_position().width * fig.get_figwidth() * 72 / LINE_CHARACTERS / 0.602  # em: 0.602 wide
    family = ["DejaVu Sans Mono", *plt.rcParams["font.family"]]  # then fonts for other scripts
    texts = []
    for line_number, line in enumerate(lines):
        for column, index, text in line:
            if paid[index] < 0.01:
                continue  # unshaded: white, not the palest blue
            start = len(text) - len(text.lstrip())  # a token's leading space is not shaded
            shade = colours(0.75 * float(paid[index]))
            ax.add_patch(Rectangle((column + start, -line_number - 0.4), len(text) - start, 0.8, color=shade))
        string = "".join(text for _, _, text in line)
        texts.append(ax.text(0, -line_number, string, family=family, fontsize=size, va="center"))
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    longest = max(texts, key=lambda text: len(text.get_text()))
    character = max(longest.get_window_extent(renderer).width, 1.0) / max(len(longest.get_text()), 1)
    ax.set_xlim(0, ax.get_window_extent(renderer).width / character)
    ax.set_ylim(-len(lines), 1)
    ax.axis("off")
    ax.set_title(f"{title}\n{caption}" if title else caption, fontsize=10)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def _draw_heatmap(
    weights: torch.Tensor,
    rows: list[str],
    columns: list[str],
    path: Path,
    title: str,
    copy_gate: torch.Tensor | None,
) -> None:
    width = min(2.0 + 0.42 * len(columns), 30.0) + (0.8 if copy_gate is not None else 0.0)
    height = min(1.6 + 0.36 * len(rows), 30.0)
    if copy_gate is None:
        fig, ax = plt.subplots(figsize=(width, height), dpi=110)
        beside: list[plt.Axes] = [ax]
    else:  # the p_gen column right beside the attention, the colour bar after both
        fig, (ax, gate_ax) = plt.subplots(
            1, 2, figsize=(width, height), dpi=110, gridspec_kw={"width_ratios": [max(len(columns), 1), 1.2]}
        )
        _gate_column(gate_ax, copy_gate, len(rows))
        beside = [ax, gate_ax]
    image = ax.imshow(weights.numpy(), cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(
        range(len(columns)),
        columns,
        rotation=60 if max(map(len, columns)) > 2 else 0,
        ha="right" if max(map(len, columns)) > 2 else "center",
    )
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("source tokens")
    ax.set_ylabel("output tokens")
    ax.tick_params(labelsize=10)
    if title:
        ax.set_title(title, fontsize=11)
    fig.tight_layout()
    fig.colorbar(image, ax=beside, fraction=0.046, pad=0.02, label="attention weight")
    fig.savefig(path, bbox_inches="tight")  # the colorbar came after the layout
    plt.close(fig)


def speech_attention(
    weights: torch.Tensor,
    frames: torch.Tensor,
    output: Sequence[str],
    shift_ms: float,
    path: Path,
    title: str = "",
) -> None:
    """One PNG for a speech model: the log-mel spectrogram on top, and below it, on the same time
    axis in seconds, the attention of each output character (+ <eos>) over the encoder's positions
    (each covers ``frames / positions`` input frames: 4 through the conv2d subsampler).

    weights: (len(output) + 1, positions); frames: (frames, bins) as the model read them."""
    rows = [*map(_label, output), "</s>"]
    seconds = len(frames) * shift_ms / 1000
    height = min(2.6 + 0.2 * len(rows), 24.0)
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(min(4 + 3 * seconds, 24.0), height), dpi=110, sharex=True,
        gridspec_kw={"height_ratios": [1.0, max(1.0, 0.12 * len(rows))]},
    )  # fmt: skip
    top.imshow(
        frames.T.numpy(), origin="lower", aspect="auto", cmap="magma", extent=(0, seconds, 0, frames.size(1))
    )
    top.set_ylabel("mel bin")
    if title:
        top.set_title(title, fontsize=11)
    image = bottom.imshow(
        weights.numpy(),
        cmap="Blues",
        vmin=0.0,
        vmax=1.0,
        aspect="auto",
        extent=(0, seconds, len(rows) - 0.5, -0.5),
    )
    bottom.set_yticks(range(len(rows)), rows, fontsize=8 if len(rows) > 40 else 10)
    bottom.set_xlabel("time (s)")
    bottom.set_ylabel("output characters")
    fig.tight_layout()
    fig.colorbar(image, ax=[top, bottom], fraction=0.03, pad=0.02, label="attention weight")
    fig.savefig(path, bbox_inches="tight")  # the colorbar came after the layout
    plt.close(fig)


def _gate_column(ax: plt.Axes, copy_gate: torch.Tensor, rows: int) -> None:
    """p_gen per output step as one labelled column (the value printed in each cell)."""
    values = copy_gate.reshape(-1, 1).numpy()
    ax.imshow(values, cmap="Oranges", vmin=0.0, vmax=1.0, aspect="auto")
    for row, value in enumerate(values[:, 0]):
        ax.text(
            0,
            row,
            f"{value:.2f}",
            ha="center",
            va="center",
            fontsize=8,
            color="white" if value > 0.6 else "black",
        )
    ax.set_xticks([0], ["p_gen"])
    ax.set_yticks(range(rows), [""] * rows)
    ax.tick_params(labelsize=10)


def read_validations(model_dir: Path) -> list[dict]:
    """The records of a model directory's validations.jsonl, in step order."""
    path = model_dir / "validations.jsonl"
    if not path.is_file():
        raise DataError(f"{path}: no such file (is {model_dir} a model directory that has trained?)")
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            raise DataError(f"{path}:{number}: not a JSON record") from None
    return sorted(records, key=lambda r: r["step"])


def training_curves(model_dirs: Sequence[Path], metric: str, path: Path) -> None:
    """Validation ``metric`` and loss against training steps, one line per model directory."""
    fig, (ax_metric, ax_loss) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)
    for model_dir in model_dirs:
        records = read_validations(model_dir)
        if records and metric not in records[0]:
            names = [k for k in records[0] if k not in ("step", "epoch", "elapsed_s", "lr")]
            raise DataError(f"{model_dir}: no metric {metric!r} in its validations (has: {', '.join(names)})")
        steps = [r["step"] for r in records]
        label = model_dir.name
        ax_metric.plot(steps, [r[metric] for r in records], marker="o", label=label)
        ax_loss.plot(steps, [r["valid_loss"] for r in records], marker="o", label=label)
    ax_metric.set_title(f"validation {metric}")
    ax_metric.set_ylabel(metric)
    ax_loss.set_title("validation loss (cross-entropy per token)")
    ax_loss.set_ylabel("loss")
    for ax in (ax_metric, ax_loss):
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def length_plot(tables: dict[str, list], metric: str, unit: str, path: Path) -> None:
    """``metric`` by source-length bucket, one line per model (tables of LengthBucket)."""
    fig, ax = plt.subplots(figsize=(9.5, 4.5), dpi=110)
    for name, table in tables.items():
        ax.plot([b.label for b in table], [b.score for b in table], marker="o", label=name)
    ax.set_xlabel(f"source length ({unit})")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} by source length")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the plot: lines cross anywhere
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def data_size_plot(points: Sequence[Point], budget: str, path: Path) -> None:
    """The test metric against training pairs (log scale), one line per recipe (data_size.Point),
    each run at ``budget`` (said in the title)."""
    fig, ax = plt.subplots(figsize=(8.5, 4.8), dpi=110)
    for recipe in dict.fromkeys(p.recipe for p in points):
        mine = [p for p in points if p.recipe == recipe]
        ax.plot([p.pairs for p in mine], [p.score for p in mine], marker="o", label=recipe)
    ax.set_xscale("log")
    sizes = sorted({p.pairs for p in points})
    ax.set_xticks(sizes, [f"{n:,}" for n in sizes])
    ax.minorticks_off()
    ax.set_xlabel("training pairs (log scale)")
    metric = points[0].metric if points else ""
    lower = {m.name: not m.higher_is_better for m in METRICS.values()}.get(metric, False)
    ax.set_ylabel(f"test {metric} ({'lower' if lower else 'higher'} is better)")
    ax.set_title(f"test {metric} by training pairs, each run {budget}")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
