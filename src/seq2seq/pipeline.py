"""Text in, text out: a trained network with its tokenizers and vocabularies (the public model).

model = seq2seq.load("runs/g2p")
outputs = model.generate(["hello"], beam=5)
outputs[0].text, outputs[0].score, outputs[0].hypotheses[0].attention
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from seq2seq import checkpoint
from seq2seq.build import build_model
from seq2seq.config import Config, config_from_dict
from seq2seq.data.tokenizers import Tokenizer, load_tokenizer
from seq2seq.data.vocab import Vocabulary
from seq2seq.decoding.generate import generate_ids
from seq2seq.device import use_bfloat16
from seq2seq.errors import ModelFileError
from seq2seq.model.seq2seq import Seq2Seq

log = logging.getLogger(__name__)


@dataclass
class Hypothesis:
    """One output: detokenized text, its tokens, total log-probability, and attention
    (output tokens + <eos>, source tokens) or None."""

    text: str
    tokens: list[str]
    score: float
    attention: torch.Tensor | None


@dataclass
class Output:
    """The n-best hypotheses for one input, best first."""

    source_tokens: list[str]
    hypotheses: list[Hypothesis]

    @property
    def text(self) -> str:
        return self.hypotheses[0].text

    @property
    def score(self) -> float:
        return self.hypotheses[0].score


class Pipeline:
    """A Seq2Seq network plus what turns text into its ids and its ids back into text."""

    def __init__(
        self,
        config: Config,
        model: Seq2Seq,
        src_tokenizer: Tokenizer,
        tgt_tokenizer: Tokenizer,
        src_vocab: Vocabulary,
        tgt_vocab: Vocabulary,
    ) -> None:
        self.config = config
        self.model = model
        self.src_tokenizer = src_tokenizer
        self.tgt_tokenizer = tgt_tokenizer
        self.src_vocab = src_vocab
        self.tgt_vocab = tgt_vocab
        self.truncated = 0  # inputs cut to decoding.max_input_len so far

    def source_tokens(self, text: str) -> list[str]:
        """Tokens of one input, cut to decoding.max_input_len; the first cut is logged, the rest
        counted in ``truncated`` (a test set's long lines should not flood the console)."""
        tokens = self.src_tokenizer.encode(text)
        limit = self.config.decoding.max_input_len
        if len(tokens) > limit:
            self.truncated += 1
            if self.truncated == 1:
                log.warning(
                    "input of %d tokens truncated to %d (decoding.max_input_len); "
                    "further truncations are counted",
                    len(tokens),
                    limit,
                )
            tokens = tokens[:limit]
        return tokens

    def set_decoding(self, **changes: Any) -> None:
        """Change decoding settings (e.g. precision="bfloat16") for this session; the model
        directory is not touched. Unknown or invalid settings raise ConfigError."""
        raw = self.config.to_dict()
        raw["decoding"].update(changes)
        self.config = config_from_dict(raw, source="decoding settings")

    def generate(
        self,
        texts: Sequence[str],
        beam: int | None = None,
        nbest: int = 1,
        length_penalty: float | None = None,
        batch_tokens: int | None = None,
    ) -> list[Output]:
        """Outputs for ``texts``, in order. Defaults come from the config's decoding section."""
        decoding = self.config.decoding
        tokens = [self.source_tokens(text) for text in texts]
        found = generate_ids(
            self.model,
            [self.src_vocab.encode(t) for t in tokens],
            beam_size=beam or decoding.beam_size,
            nbest=nbest,
            length_penalty=decoding.length_penalty if length_penalty is None else length_penalty,
            max_length_ratio=decoding.max_length_ratio,
            max_length_offset=decoding.max_length_offset,
            batch_tokens=batch_tokens or decoding.batch_tokens,
            bfloat16=use_bfloat16(decoding.precision),
        )
        outputs = []
        for src_tokens, hyps in zip(tokens, found, strict=True):
            converted = []
            for hyp in hyps:
                out_tokens = self.tgt_vocab.decode(hyp.token_ids)
                text = self.tgt_tokenizer.decode(out_tokens)
                converted.append(Hypothesis(text, out_tokens, hyp.score, hyp.attention))
            outputs.append(Output(src_tokens, converted))
        return outputs

    def save(self, directory: Path) -> None:
        """Config, tokenizers, vocabularies and weights into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        checkpoint.save_config(directory, self.config)
        files = {
            **self.src_tokenizer.files("src"),
            **self.tgt_tokenizer.files("tgt"),
            "src_vocab.txt": self.src_vocab.to_text().encode("utf-8"),
            "tgt_vocab.txt": self.tgt_vocab.to_text().encode("utf-8"),
        }
        for name, data in files.items():
            checkpoint.atomic_write(directory / name, data)
        checkpoint.write_checksums(directory, [checkpoint.CONFIG, *files])
        checkpoint.save_weights(directory / checkpoint.WEIGHTS, self.model)


def load(directory: str | Path, weights: str | Path | None = None) -> Pipeline:
    """Load a model directory (never unpickles anything); ``weights`` picks another weights file."""
    directory = Path(directory)
    checkpoint.check_model_dir(directory)
    checkpoint.verify_checksums(directory)  # first: a damaged config is damage, not a wrong setting
    config = checkpoint.load_config_from_dir(directory)
    try:
        src_tokenizer = load_tokenizer(config.data.src_tokenizer.type, directory, "src")
        tgt_tokenizer = load_tokenizer(config.data.tgt_tokenizer.type, directory, "tgt")
        src_vocab = Vocabulary.load(directory / "src_vocab.txt")
        tgt_vocab = Vocabulary.load(directory / "tgt_vocab.txt")
    except FileNotFoundError as err:
        raise ModelFileError(f"{err.filename}: missing from the model directory") from None
    except (OSError, UnicodeDecodeError, ValueError, RuntimeError) as err:
        raise ModelFileError(f"{directory}: damaged tokenizer or vocabulary ({err})") from None
    model = build_model(config.model, len(src_vocab), len(tgt_vocab))
    checkpoint.load_weights(Path(weights) if weights else directory / checkpoint.WEIGHTS, model)
    model.eval()
    return Pipeline(config, model, src_tokenizer, tgt_tokenizer, src_vocab, tgt_vocab)
