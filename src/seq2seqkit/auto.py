"""``seq2seqkit train DATA``: a recipe chosen from the data itself, each choice with its reason.

``choose(...)`` finds the pairs (``data/sniff.py``), holds out seeded valid and test splits when
none lie beside the data, measures them (``data/profile.py``) and chooses, in this order: the task
and its metrics, the tokenizer of each side, a shared vocabulary, copy, the family and its size,
the length limits, and the batch, schedule and validation interval for the budget. The result is
an ordinary recipe: ``write(...)`` puts it, and any held-out split files, in the model directory,
where ``seqseqkit train DIR/recipe.yaml`` reproduces the run. The rules follow our measured
recipes (docs/own-data.md); they read only the data's figures, never its name.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from seq2seqkit.build import build_tokenizer
from seq2seqkit.config import Config, TokenizerConfig, merge, read_recipe
from seq2seqkit.data.profile import Profile, SideProfile, profile
from seq2seqkit.data.readers import Pair, read_lines
from seq2seqkit.data.sniff import Found, find_data
from seq2seqkit.data.tokenizers import Tokenizer
from seq2seqkit.errors import DataError
from seq2seqkit.recipes import load_config, resolve
from seq2seqkit.tasks import TASKS, read_split, task_config

DEFAULT_MINUTES = 10.0
HELD_OUT_SHARE = 0.05  # of the pairs, for each of valid and test, when none lie beside the data
HELD_OUT_MAX = 2000
SMALL_DATA = 5000  # pairs: below this, the smaller model with more dropout
LONG_SOURCE = 150  # tokens: longer sources are cut to their start (or best window) at this length
READER_WINDOW = 100  # tokens a pointer reader's training windows hold (the qa-squad-reader recipe's)
READER_INPUT = 400  # tokens a pointer reader reads in generation, at most
FAMILY_WHY = "at CPU budgets of 15-20 minutes our RNN recipes beat our Transformers (docs/transformer.md)"
READER_WHY = (
    "answers are spans: on SQuAD in 20 minutes a reader reached test F1 40.6, generating 21.7 (docs/qa.md)"
)
LENGTH_QUANTILE = 0.995  # the length limits keep this share of each side
WINDOWS = {"start": "their start", "window": "the window of the last field that best matches the first"}


@dataclass(frozen=True)
class Choice:
    """One decision, printed as ``what: value (reason)``."""

    what: str
    value: str
    reason: str

    def __str__(self) -> str:
        return f"{self.what}: {self.value} ({self.reason})"


@dataclass
class Chosen:
    """The recipe (nested dicts, as YAML writes them), the choices behind it, and the splits."""

    recipe: dict[str, Any]
    choices: list[Choice]
    found: Found
    splits: dict[str, list[Pair]]
    held_out: list[str] = field(default_factory=list)  # the splits taken from the training pairs

    @property
    def config(self) -> Config:
        return task_config(self.recipe, "the chosen recipe")

    def text(self) -> str:
        """The recipe's YAML, the choices as comments above it."""
        lines = ["# chosen from the data by seq2seqkit train, each choice with its reason:"]
        lines += [f"#   {c}" for c in self.choices]
        return "\n".join(lines) + "\n" + yaml.safe_dump(self.recipe, sort_keys=False, allow_unicode=True)


def choose(
    paths: Sequence[str | Path],
    out: Path,
    minutes: float = 10.0,
    target: str | None = None,
    pair: str | None = None,
    task: str | None = None,
    seed: int = 1,
) -> Chosen:
    """The recipe for the data at ``paths``, training into ``out`` for ``minutes``."""
    found = find_data(paths, target, pair)
    reader = task_config({"task": "asr" if found.audio else "translation", "data": found.data})
    splits = {split: read_split(reader, split) for split in ("train", "valid", "test")}
    if not splits["train"]:
        raise DataError(f"{found.data['train']}: no pairs")
    held_out = [split for split in ("valid", "test") if not splits[split]]
    splits.update(hold_out(splits["train"], held_out, seed))
    data = dict(found.data)  # with absolute paths: the written recipe works from any folder
    for split in ("train", "valid", "test"):
        written = split in held_out or (held_out and split == "train")
        location = _split_path(out, split, found) if written else Path(data[split]) if data[split] else None
        data[split] = str(location.resolve()) if location else ""
    if held_out and found.audio:
        data["tsv_header"] = False  # the written manifests have none
    choices = [Choice("data", found.what, _split_reason(splits, held_out))]
    prof = profile(splits["train"])
    recipe = _recipe(prof, found, data, minutes, task, out, choices)
    return Chosen(recipe, choices, found, splits, held_out)


def data_name(paths: Sequence[Path]) -> str:
    """A model directory's name for the data: the file's stem, or the folder's name for a folder
    or for files named train.*."""
    first = paths[0].resolve()
    if first.is_dir():
        return first.name
    return first.parent.name if first.name.startswith("train.") else first.name.split(".")[0] or "model"


def hold_out(pairs: list[Pair], splits: Sequence[str], seed: int) -> dict[str, list[Pair]]:
    """Seeded, disjoint held-out ``splits`` (valid, test) of HELD_OUT_SHARE of ``pairs`` each, at
    most HELD_OUT_MAX, and the training pairs left. Pairs with the same source go to one split
    together, so no held-out source (or pair) occurs in training."""
    if not splits:
        return {"train": pairs}
    groups: dict[str, list[Pair]] = {}
    for pair in pairs:
        groups.setdefault(pair.src, []).append(pair)
    if len(groups) < 10 * (len(splits) + 1):
        raise DataError(
            f"{len(groups)} distinct sources are too few to hold out {' and '.join(splits)} splits"
        )
    order = list(groups)
    random.Random(seed).shuffle(order)
    size = max(1, min(HELD_OUT_MAX, round(HELD_OUT_SHARE * len(pairs))))
    taken: dict[str, list[Pair]] = {split: [] for split in splits}
    rest = iter(order)
    for split in splits:
        while len(taken[split]) < size:
            taken[split] += groups[next(rest)]
    held = {id(p) for split in splits for p in taken[split]}
    train = [p for p in pairs if id(p) not in held]
    if not train:
        raise DataError(f"no training pairs left after holding out {' and '.join(splits)} splits")
    return {"train": train, **taken}


def write(chosen: Chosen, out: Path) -> Path:
    """The held-out split files and ``recipe.yaml`` in ``out``; returns the recipe's path."""
    try:
        (out / "data" if chosen.held_out else out).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"{out}: cannot write the model directory ({err.strerror})") from None
    if chosen.held_out:
        for split in ("train", *chosen.held_out):
            _write_split(chosen.splits[split], chosen.found, _split_path(out, split, chosen.found))
    recipe = out / "recipe.yaml"
    recipe.write_text(chosen.text(), encoding="utf-8")
    load_config(recipe)  # what was written reads back
    return recipe


def _split_reason(splits: dict[str, list[Pair]], held_out: list[str]) -> str:
    sizes = ", ".join(f"{len(splits[s]):,} {s}" for s in ("train", "valid", "test"))
    if not held_out:
        return f"{sizes}, from the files beside it"
    return f"{sizes}; {' and '.join(held_out)} held out at random (seeded), no source in two splits"


def _split_path(out: Path, split: str, found: Found) -> Path:
    fmt = found.data["format"]
    if fmt == "parallel":
        return out / "data" / split  # + .src_suffix / .tgt_suffix
    return out / "data" / f"{split}{'.jsonl' if fmt == 'jsonl' else '.tsv'}"


def _write_split(pairs: list[Pair], found: Found, path: Path) -> None:
    """The pairs as their source file held them: its own lines (a header row first), or for a
    speech manifest, absolute audio paths and transcripts."""
    data = found.data
    if found.audio:
        path.write_text("".join(f"{Path(p.src).resolve()}\t{p.tgt}\n" for p in pairs), encoding="utf-8")
        return
    if data["format"] == "parallel":
        for side in (data["src_suffix"], data["tgt_suffix"]):
            lines = dict(read_lines(Path(f"{data['train']}.{side}")))
            text = "".join(lines[_line_number(p)] + "\n" for p in pairs)
            Path(f"{path}.{side}").write_text(text, encoding="utf-8")
        return
    lines = dict(read_lines(Path(data["train"])))
    header = [lines[min(lines)] + "\n"] if data.get("tsv_header") else []
    path.write_text("".join(header + [lines[_line_number(p)] + "\n" for p in pairs]), encoding="utf-8")


def _line_number(pair: Pair) -> int:
    return int(pair.origin.rsplit(":", 1)[1])


def _recipe(
    prof: Profile, found: Found, data: dict[str, Any], minutes: float, task: str | None, out: Path,
    choices: list[Choice],
) -> dict[str, Any]:  # fmt: skip
    if found.audio:
        return _speech_recipe(data, minutes, out, choices)
    src_tok, tgt_tok, shared, copy = _tokenizers(prof, choices)
    task_name = _task(prof, task, copy, choices)
    reader = task_name == "qa" and prof.fields >= 2  # answers are spans of the last field: point
    if reader:  # there is no generator to copy into: the reader's output is the span itself
        choices[:] = [replace(c, value="not needed: the reader points at the span") if c.what == "copy" else c
                      for c in choices]  # fmt: skip
    lengths, longest = _lengths(prof, src_tok, tgt_tok, shared, choices, reader)
    data |= {"src_tokenizer": src_tok, "tgt_tokenizer": tgt_tok, "shared_vocab": shared, **lengths}
    model, training = _model(prof, src_tok, tgt_tok, copy, minutes, choices, reader)
    decoding = {
        "beam_size": 5,
        "length_penalty": 0.0 if prof.is_short_output else 1.0,
        # generation reads a long input whole (up to the default 400 tokens) unless training cut
        # sources, and may write twice the training targets' length limit
        **({"max_input_len": data["max_src_len"]} if "long_sources" in data else {}),
        "max_output_len": 2 * data["max_tgt_len"],
    }
    if reader:  # a reader reads whole paragraphs in generation and takes the best span
        decoding = {"beam_size": 1, "max_input_len": min(READER_INPUT, max(longest, data["max_src_len"]))}
    return {
        "name": out.name,
        "description": f"chosen from the data by seq2seqkit train; {minutes:g} min",
        "task": task_name,
        "output_dir": str(out),
        "data": data,
        "model": model,
        "training": training,
        "decoding": decoding,
    }


def _side_tokenizer(side: SideProfile) -> tuple[str, str]:
    """Words for a closed set of frequent words, characters for short strings, else SentencePiece:
    (type, reason)."""
    if side.word_types <= 1000 and side.words_per_type >= 20:
        return (
            "word",
            f"a closed set of {side.word_types:,} words, each seen {side.words_per_type:,.0f} times "
            "on average",
        )
    if side.median_chars <= 30 and side.p99_chars <= 100:
        return "char", f"short strings: median {side.median_chars:g} characters, {side.symbols} symbols"
    return (
        "sentencepiece",
        f"median {_words(side.median_words)}, {side.word_types:,} word types, "
        f"{side.singleton_share:.0%} seen once",
    )


def _pieces(*sides: SideProfile) -> tuple[int, str]:
    """SentencePiece pieces for these sides' word types seen more than once: an eighth, 1k-16k,
    in thousands (6k for Debian en-de's 48k recurring types); (size, reason)."""
    recurring = sum(side.word_types * (1 - side.singleton_share) for side in sides)
    size = int(min(16000, max(1000, round(recurring / 8, -3))))
    return size, f"an eighth of the {recurring:,.0f} recurring word types"


def _describe(tokenizer: dict[str, Any]) -> str:
    kind = tokenizer["type"]
    if kind == "sentencepiece":
        return f"SentencePiece BPE, {tokenizer['vocab_size']:,} pieces"
    return {"char": "characters", "word": "words"}[kind]


def _tokenizers(prof: Profile, choices: list[Choice]) -> tuple[dict[str, Any], dict[str, Any], bool, bool]:
    """Each side's tokenizer, whether they share one vocabulary, and copy."""
    (src_type, src_why), (tgt_type, tgt_why) = _side_tokenizer(prof.src), _side_tokenizer(prof.tgt)
    overlap = f"{prof.copy_share:.0%} of target words occur in their source"
    copy = src_type != "char" and prof.copy_share >= 0.5
    if copy:  # copying needs the target cut as its source is: one joint tokenizer
        tgt_type, tgt_why = src_type, "as the source, for copying"
    shared = src_type == tgt_type and prof.shared_symbols >= 0.9
    tokenizers = []
    for kind, side, why in ((src_type, prof.src, src_why), (tgt_type, prof.tgt, tgt_why)):
        tokenizer: dict[str, Any] = {"type": kind}
        if kind == "sentencepiece":
            size, how = _pieces(prof.src, prof.tgt) if shared else _pieces(side)
            tokenizer |= {"vocab_size": size, "model_type": "bpe"}
            why += f"; {how}{' of both sides' if shared else ''}"
        tokenizers.append((tokenizer, why))
    for name, (tokenizer, why) in zip(("source", "target"), tokenizers, strict=True):
        choices.append(Choice(f"tokenizer ({name})", _describe(tokenizer), why))
    choices.append(
        Choice(
            "vocabulary",
            "shared by both sides" if shared else "one per side",
            f"{prof.shared_symbols:.0%} of target characters occur in sources",
        )
    )
    if copy or prof.copy_share < 0.5:
        choices.append(Choice("copy", "on, pointer-generator" if copy else "off", overlap))
    else:
        choices.append(
            Choice("copy", "off", f"{overlap}, but {_describe(tokenizers[1][0])} hold every symbol")
        )
    return tokenizers[0][0], tokenizers[1][0], shared, copy


def _task(prof: Profile, given: str | None, copy: bool, choices: list[Choice]) -> str:
    """``given``, else from the outputs: spans of a context (QA), short strings, summaries, sentences."""
    if given is not None:
        if given not in TASKS:
            raise DataError(f"--task {given!r} is not a task (tasks: {', '.join(TASKS)})")
        name, reason = given, "--task"
    elif prof.fields >= 2 and prof.span_share >= 0.9 and prof.is_short_output:
        name, reason = "qa", f"{prof.span_share:.0%} of targets are spans of the last source field"
    elif prof.is_short_output:
        name, reason = (
            "transduction",
            f"short outputs, median {_words(prof.tgt.median_words)}, {prof.tgt.median_chars:g} characters: "
            "BLEU would stay near 0",
        )
    elif copy and prof.src.median_words >= 3 * prof.tgt.median_words:
        ratio = prof.src.median_words / max(1, prof.tgt.median_words)
        name, reason = "summarization", f"targets copied from sources {ratio:.0f}x their length"
    else:
        name, reason = "translation", f"sentences, median {_words(prof.tgt.median_words)}"
    metrics = " and ".join(m.name for m in TASKS[name].metrics[:2])
    choices.append(Choice("task", f"{name}, scored by {metrics}", reason))
    return name


def _words(count: float) -> str:
    return f"{count:g} word{'' if count == 1 else 's'}"


def _token_lengths(texts: list[str], tokenizer: Tokenizer) -> list[int]:
    return sorted(len(tokenizer.encode(t)) for t in texts)


def _lengths(
    prof: Profile, src_tok: dict[str, Any], tgt_tok: dict[str, Any], shared: bool, choices: list[Choice],
    reader: bool = False,
) -> tuple[dict[str, Any], int]:  # fmt: skip
    """max_src_len / max_tgt_len at the LENGTH_QUANTILE of each side's tokens (a sample of up to
    20k pairs, SentencePiece trained on it); longer sources are cut, not dropped, past LONG_SOURCE,
    and a reader trains on READER_WINDOW-token windows that hold the answer. And the
    LENGTH_QUANTILE of the sources, uncut."""
    sample = prof.sample
    src_texts, tgt_texts = [p.src for p in sample], [p.tgt for p in sample]
    src_tokenizer = build_tokenizer(TokenizerConfig(**src_tok), src_texts + (tgt_texts if shared else []))
    tgt_tokenizer = (
        src_tokenizer if tgt_tok == src_tok else build_tokenizer(TokenizerConfig(**tgt_tok), tgt_texts)
    )
    src_lengths = _token_lengths(src_texts, src_tokenizer)
    tgt_lengths = _token_lengths(tgt_texts, tgt_tokenizer)
    quantile = lambda values: values[min(len(values) - 1, int(LENGTH_QUANTILE * len(values)))]  # noqa: E731
    max_src = _round_up(quantile(src_lengths))
    max_tgt = _round_up(quantile(tgt_lengths))
    limits: dict[str, Any] = {"max_src_len": max_src, "max_tgt_len": max_tgt}
    median = src_lengths[len(src_lengths) // 2]
    if reader:
        limits |= {"max_src_len": min(READER_WINDOW, max_src), "long_sources": "window"}
        choices.append(Choice(
            "training windows", f"{limits['max_src_len']} tokens holding the answer; generation reads "
            f"up to {min(READER_INPUT, max_src)}",
            f"the median source is {median} tokens; short windows buy epochs (qa-squad-reader's)",
        ))  # fmt: skip
    elif max_src > LONG_SOURCE:
        cut = sum(1 for n in src_lengths if n > LONG_SOURCE) / len(src_lengths)
        how = "window" if prof.fields >= 2 else "start"
        limits |= {"max_src_len": LONG_SOURCE, "long_sources": how}
        choices.append(Choice(
            "long sources", f"cut to {LONG_SOURCE} tokens ({WINDOWS[how]})",
            f"{cut:.0%} of sources are longer; the median is {median}",
        ))  # fmt: skip
    choices.append(
        Choice(
            "length limits",
            f"source {limits['max_src_len']}, target {max_tgt} tokens",
            f"{LENGTH_QUANTILE:.1%} of each side fits; longer training pairs are dropped and counted",
        )
    )
    return limits, max_src


def _round_up(length: int) -> int:
    step = 10 if length > 20 else 5
    return max(step, math.ceil(length * 1.05 / step) * step)


# The built-in recipes whose model sections the model choice starts from: (recipe, what it is,
# changes to its model section). Read from the recipes, so the choice follows them as they are tuned.
FAMILIES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "reader": ("qa-squad-reader", "pointer reader, aligned question embedding, 2-layer BiLSTM 128, start/end "
               "pointers (qa-squad-reader's)", {}),
    "pointer_generator": ("summarize-debian", "LSTM, biLSTM encoder 128, pointer-generator decoder 256 (the "
                          "summarization recipe's)", {"decoder": {"coverage": False}}),
    "strings": ("g2p", "GRU, biGRU encoder 256, decoder 512 with Luong attention (the G2P demo's)",
                {"dropout": 0.2}),
    "sentences": ("mt-debian-en-de", "LSTM, 2-layer biLSTM encoder 128, 2-layer decoder 256 with Luong "
                  "attention (en-de's)", {}),
}  # fmt: skip


def _family(name: str) -> tuple[dict[str, Any], str, float]:
    """The model section (changed as FAMILIES says), description and peak learning rate of a family."""
    recipe, size, changes = FAMILIES[name]
    raw = read_recipe(resolve(recipe))
    return merge(raw["model"], changes), size, raw["training"]["lr"]


def _model(
    prof: Profile, src_tok: dict[str, Any], tgt_tok: dict[str, Any], copy: bool, minutes: float,
    choices: list[Choice], reader: bool = False,
) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
    """The RNN family, sized as our measured recipes: the pointer reader for answers that are
    spans, the pointer-generator for copying, the G2P demo's GRU for strings, the en-de LSTM for
    sentences; halved, with more dropout, under SMALL_DATA pairs. Then the training section for
    the budget."""
    small = prof.pairs < SMALL_DATA
    strings = src_tok["type"] != "sentencepiece" and tgt_tok["type"] != "sentencepiece"
    family = "reader" if reader else "pointer_generator" if copy else "strings" if strings else "sentences"
    model, size, lr = _family(family)
    if family == "pointer_generator":
        model["encoder"]["field_match"] = prof.fields >= 2
    if family == "strings" and prof.pairs >= 50000:
        model["dropout"] = 0.0  # as the G2P demo: with this much data, dropout only slows learning
    if family == "sentences" and tgt_tok["type"] == "char":
        model["decoder"]["tie_embeddings"] = False
    if small:
        model["embedding_size"] //= 2
        model["dropout"] = 0.3
        for part in ("encoder", "decoder"):
            if "hidden_size" in model[part]:  # a reader's decoder is its pointers
                model[part]["hidden_size"] //= 2
        size = f"half of {size}, dropout 0.3"
    why = READER_WHY if reader else FAMILY_WHY
    choices.append(
        Choice("model", f"RNN: {size}", f"{prof.pairs:,} training pairs{' (few)' if small else ''}; {why}")
    )
    # a reader's batches count its windows, the others' their targets (the longer side, mostly)
    target = prof.tgt.median_chars if tgt_tok["type"] == "char" else prof.tgt.median_words
    per_pair = READER_WINDOW if reader else max(1.0, target)
    return model, _training(prof.pairs * per_pair, minutes, lr, small, choices)


def _training(tokens: float, minutes: float, lr: float, small: bool, choices: list[Choice]) -> dict[str, Any]:
    """Batches of about 1% of the training ``tokens`` (500-4,000), warmup then cosine decay to the
    end of the budget, and a validation every 100 steps per minute of budget."""
    batch = int(min(4000, max(500, round(tokens / 100, -2))))
    # validations take time from a wall-clock budget (P2G, 5 minutes: 924 steps validating every
    # 200, 1,124 for the hand recipe's every 500), and the final one comes anyway
    validate = int(max(100, round(100 * minutes, -2)))
    choices.append(
        Choice(
            "training",
            f"{minutes:g} min, batches of {batch:,} tokens, lr {lr} warmup then cosine, "
            f"validation every {validate} steps",
            "the budget; batches of about 1% of the training tokens, 500-4,000",
        )
    )
    return {
        "batch_tokens": batch, "lr": lr, "scheduler": "warmup_cosine",
        "warmup_steps": 100 if minutes <= 2 else 200, "max_minutes": minutes,
        "label_smoothing": 0.1, "clip_grad_norm": 5.0, "validate_every": validate,
        **({"precision": "float32"} if small else {}),  # bfloat16 autocast costs more than it saves
    }  # fmt: skip


def _speech_recipe(data: dict[str, Any], minutes: float, out: Path, choices: list[Choice]) -> dict[str, Any]:
    """The AN4 recipe's listener, speller and CTC head, at this budget: our one measured speech recipe."""
    recipe = read_recipe(resolve("asr-an4"))
    recipe.update(name=out.name, output_dir=str(out), description=f"chosen from the data; {minutes:g} min")
    recipe["data"] |= data | {"source": "audio"}
    recipe["training"] |= {"max_minutes": minutes, "max_steps": 0, "evaluate_test": bool(data.get("test"))}
    choices.append(Choice("task", "asr, scored by WER and CER", "audio sources"))
    choices.append(
        Choice("model", "the asr-an4 recipe's (BiLSTM listener, speller, CTC head)", "our speech recipe")
    )
    return recipe
