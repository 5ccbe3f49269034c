"""Golden outputs: the toy recipes train and generate exactly as they did when ``golden.json`` was
written (float32, one thread, fixed seed), so a refactoring that changes no arithmetic is proven
to change no result.

Regenerate (only when a change of results is intended, and say so in the commit):
    .venv/bin/python tests/integration/test_golden.py
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

import seq2seqkit
from seq2seqkit.config import Config
from seq2seqkit.recipes import load_config

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).with_name("golden.json")
COMMON = ["training.threads=1", "training.precision=float32", "training.evaluate_test=false"]

# A small made-up language pair: words map one to one, and the verb moves to the end of the sentence.
LEXICON = {
    "the": "der", "a": "ein", "cat": "katze", "dog": "hund", "bird": "vogel", "sees": "sieht",
    "likes": "mag", "finds": "findet", "small": "kleine", "big": "grosse", "red": "rote",
    "house": "haus", "tree": "baum", "today": "heute", "often": "oft", "package": "paket",
}  # fmt: skip
NOUNS = ["cat", "dog", "bird", "house", "tree", "package"]
ADJECTIVES = ["small", "big", "red"]
VERBS = ["sees", "likes", "finds"]


def _sentence(rng: random.Random) -> tuple[str, str]:
    def phrase() -> list[str]:
        words = [rng.choice(["the", "a"])]
        if rng.random() < 0.5:
            words.append(rng.choice(ADJECTIVES))
        return [*words, rng.choice(NOUNS)]

    subject, verb, obj = phrase(), rng.choice(VERBS), phrase()
    adverb = [rng.choice(["today", "often"])] if rng.random() < 0.3 else []
    src = [*subject, verb, *obj, *adverb]
    tgt = [LEXICON[w] for w in [*subject, *adverb, *obj, verb]]
    return " ".join(src), " ".join(tgt)


def write_translation_data(directory: Path) -> None:
    rng = random.Random(7)
    for split, size in (("train", 1500), ("valid", 60), ("test", 60)):
        pairs = [_sentence(rng) for _ in range(size)]
        (directory / f"{split}.en").write_text("".join(s + "\n" for s, _ in pairs))
        (directory / f"{split}.de").write_text("".join(t + "\n" for _, t in pairs))


def recipes(directory: Path) -> dict[str, tuple[Config, list[str]]]:
    """Each recipe's config (small overrides of the shipped one) and the inputs to generate for."""
    write_translation_data(directory)
    translation = [
        f"data.train={directory}/train", f"data.valid={directory}/valid", f"data.test={directory}/test",
        "data.src_suffix=en", "data.tgt_suffix=de",
        "data.src_tokenizer={type: sentencepiece, vocab_size: 60}",
        "data.tgt_tokenizer={type: sentencepiece, vocab_size: 60}",
        "model.embedding_size=32", "model.dropout=0.1",
        "model.encoder={hidden_size: 32, num_layers: 2, bidirectional: true}",
        "model.decoder={hidden_size: 64, num_layers: 2, attention: general, input_feeding: true}",
        "training.batch_tokens=600", "training.max_steps=150", "training.validate_every=75",
        "training.max_minutes=0", "training.lr=0.005", "training.warmup_steps=10",
    ]  # fmt: skip
    g2p = [
        "model.embedding_size=16", "model.encoder.hidden_size=32", "model.decoder.hidden_size=48",
        "training.max_steps=60", "training.validate_every=30", "training.max_minutes=0",
        "training.warmup_steps=5",
    ]  # fmt: skip
    toy = ["training.max_steps=150", "training.validate_every=75", "model.encoder.hidden_size=32"]
    configs = REPO / "src" / "seq2seqkit" / "recipes"
    return {
        "toy_reverse": (
            load_config(configs / "toy_reverse.yaml", [*toy, *COMMON]),
            ["abc", "jihgfed", "aaab", "cabbage", "deadbeef"],
        ),
        "g2p": (
            load_config(configs / "g2p.yaml", [*g2p, *COMMON]),
            ["hello", "world", "sequence", "phoneme", "xylophone"],
        ),
        "translation": (
            load_config(configs / "mt-debian-en-de.yaml", [*translation, *COMMON]),
            ["the cat sees a dog", "a small bird likes the red house today", "the tree finds a package"],
        ),
    }


def run_recipe(config: Config, inputs: list[str], out: Path) -> dict[str, Any]:
    torch.set_num_threads(1)
    model_dir = seq2seqkit.train(config, out)
    validations = [json.loads(line) for line in (model_dir / "validations.jsonl").read_text().splitlines()]
    pipeline = seq2seqkit.load(model_dir)
    result: dict[str, Any] = {"valid_loss": [round(v["valid_loss"], 5) for v in validations]}
    for beam in (1, 3):
        outputs = pipeline.generate(inputs, beam=beam, nbest=min(beam, 2))
        result[f"beam{beam}"] = [[[h.text, round(h.score, 4)] for h in o.hypotheses] for o in outputs]
    return result


@pytest.mark.slow
@pytest.mark.parametrize("name", ["toy_reverse", "g2p", "translation"])
def test_recipe_outputs_unchanged(name: str, tmp_path: Path) -> None:
    golden = json.loads(GOLDEN.read_text())[name]
    config, inputs = recipes(tmp_path)[name]
    found = run_recipe(config, inputs, tmp_path / name)
    assert found["valid_loss"] == pytest.approx(golden["valid_loss"], abs=1e-4)
    for key in ("beam1", "beam3"):
        assert [[h[0] for h in o] for o in found[key]] == [[h[0] for h in o] for o in golden[key]]
        found_scores = [h[1] for o in found[key] for h in o]
        assert found_scores == pytest.approx([h[1] for o in golden[key] for h in o], abs=1e-3)


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        written = {name: run_recipe(cfg, ins, work / name) for name, (cfg, ins) in recipes(work).items()}
    GOLDEN.write_text(json.dumps(written, indent=1) + "\n")
    print(json.dumps(written, indent=1), file=sys.stderr)
