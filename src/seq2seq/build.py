"""The one place that turns a ``Config`` into objects: data splits, tokenizers, vocabularies, model."""

from __future__ import annotations

from pathlib import Path

from seq2seq.config import Config, DataConfig, ModelConfig, TokenizerConfig
from seq2seq.data.readers import Pair, ReadReport, read_jsonl, read_parallel, read_tsv
from seq2seq.data.synthetic import make_pairs
from seq2seq.data.tokenizers import (
    CharTokenizer,
    SentencePieceTokenizer,
    Tokenizer,
    WordTokenizer,
)
from seq2seq.data.vocab import PAD_ID, Vocabulary
from seq2seq.errors import ConfigError
from seq2seq.model.attention import Attention
from seq2seq.model.decoder import RecurrentDecoder
from seq2seq.model.encoder import RecurrentEncoder
from seq2seq.model.seq2seq import Seq2Seq
from seq2seq.tasks import TASKS, Task
from seq2seq.tasks.g2p import cmudict_pairs


def read_split(data: DataConfig, split: str, report: ReadReport | None = None) -> list[Pair]:
    """The pairs of ``split`` ("train", "valid" or "test"); [] for an unset optional split."""
    location = getattr(data, split)
    match data.format:
        case "cmudict":
            return cmudict_pairs(split)
        case "synthetic":
            syn = data.synthetic
            size = syn.train_size if split == "train" else syn.eval_size
            seed = {"train": 1, "valid": 2, "test": 3}[split]
            return make_pairs(syn.task, size, seed, syn.min_length, syn.max_length, syn.alphabet_size)
        case _ if not location:
            return []
        case "parallel":
            return read_parallel(
                Path(f"{location}.{data.src_suffix}"),
                Path(f"{location}.{data.tgt_suffix}"),
                data.skip_bad_lines,
                report,
            )
        case "tsv":
            return read_tsv(Path(location), data.tsv_header, data.skip_bad_lines, report)
        case "jsonl":
            return read_jsonl(Path(location), data.src_field, data.tgt_field, data.skip_bad_lines, report)
    raise ConfigError(f"data.format {data.format!r} is not supported")


def build_tokenizers(data: DataConfig, pairs: list[Pair]) -> tuple[Tokenizer, Tokenizer]:
    """Source and target tokenizers; with ``joint_sentencepiece``, or a shared vocabulary and the
    same SentencePiece settings on both sides, one SentencePiece model is trained on both sides' text."""
    src_texts, tgt_texts = [p.src for p in pairs], [p.tgt for p in pairs]
    joint = (data.shared_vocab or data.joint_sentencepiece) and data.src_tokenizer == data.tgt_tokenizer
    if joint and data.src_tokenizer.type == "sentencepiece":
        tokenizer = build_tokenizer(data.src_tokenizer, src_texts + tgt_texts)
        return tokenizer, tokenizer
    return build_tokenizer(data.src_tokenizer, src_texts), build_tokenizer(data.tgt_tokenizer, tgt_texts)


def build_tokenizer(config: TokenizerConfig, texts: list[str]) -> Tokenizer:
    """A tokenizer of the configured type; SentencePiece is trained on ``texts``."""
    match config.type:
        case "char":
            return CharTokenizer()
        case "word":
            return WordTokenizer()
        case "sentencepiece":
            return SentencePieceTokenizer.train(texts, config.vocab_size, config.model_type)
    raise ConfigError(f"tokenizer type {config.type!r} is not supported")


def build_vocabularies(
    data: DataConfig, src_tokens: list[list[str]], tgt_tokens: list[list[str]]
) -> tuple[Vocabulary, Vocabulary]:
    """Source and target vocabularies (one object for both when shared)."""
    if data.shared_vocab:
        shared = Vocabulary.build(src_tokens + tgt_tokens, data.max_vocab_size, data.min_freq)
        return shared, shared
    return (
        Vocabulary.build(src_tokens, data.max_vocab_size, data.min_freq),
        Vocabulary.build(tgt_tokens, data.max_vocab_size, data.min_freq),
    )


def build_model(config: ModelConfig, src_vocab_size: int, tgt_vocab_size: int) -> Seq2Seq:
    enc, dec = config.encoder, config.decoder
    encoder = RecurrentEncoder(
        vocab_size=src_vocab_size,
        embedding_size=config.embedding_size,
        hidden_size=enc.hidden_size,
        num_layers=enc.num_layers,
        rnn_type=config.rnn_type,
        bidirectional=enc.bidirectional,
        dropout=config.dropout,
        pooling=enc.pooling,
        pad_id=PAD_ID,
    )
    attention = None
    if dec.context == "attention":
        attention = Attention(
            kind=dec.attention,
            query_size=dec.hidden_size,
            memory_size=encoder.output_size,
            attention_size=dec.hidden_size,
        )
    decoder = RecurrentDecoder(
        vocab_size=tgt_vocab_size,
        embedding_size=config.embedding_size,
        hidden_size=dec.hidden_size,
        num_layers=dec.num_layers,
        rnn_type=config.rnn_type,
        dropout=config.dropout,
        memory_size=encoder.output_size,
        context=dec.context,
        attention=attention,
        input_feeding=dec.input_feeding,
        feature_size=dec.hidden_size,
        tie_embeddings=dec.tie_embeddings,
        pad_id=PAD_ID,
    )
    return Seq2Seq(encoder, decoder)


def build_task(config: Config) -> Task:
    return TASKS[config.task]
