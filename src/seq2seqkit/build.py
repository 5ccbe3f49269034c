"""The one place that turns a ``Config`` into objects: featurizers, model (frontend, encoder,
decoder) and its loss. It also picks the speed kernels (``kernels.ops_for``) where they pay."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import nn

from seq2seqkit.config import DataConfig, ModelConfig, TokenizerConfig
from seq2seqkit.data.audio import AudioFeaturizer
from seq2seqkit.data.featurizers import SourceFeaturizer, TextFeaturizer
from seq2seqkit.data.readers import Pair
from seq2seqkit.data.tokenizers import (
    SPACE,
    CharTokenizer,
    SentencePieceTokenizer,
    Tokenizer,
    WordTokenizer,
)
from seq2seqkit.data.vocab import FIELD_SEPARATOR, PAD_ID, SPECIALS, UNK_ID, Vocabulary
from seq2seqkit.errors import ConfigError
from seq2seqkit.kernels import Ops, ops_for
from seq2seqkit.model.attention import Attention
from seq2seqkit.model.decoder import RecurrentDecoder
from seq2seqkit.model.encoder import NoSource, RecurrentEncoder
from seq2seqkit.model.frontends import (
    Conv2dSubsampling,
    FieldMatchEmbedding,
    FrameStacking,
    Frontend,
    SpecAugment,
    TokenEmbedding,
)
from seq2seqkit.model.reader import Network, PointerReader
from seq2seqkit.model.seq2seq import Seq2Seq
from seq2seqkit.model.transformer import TransformerDecoder, TransformerEncoder
from seq2seqkit.training.loss import (
    BoundaryLoss,
    Loss,
    PointerGeneratorLoss,
    SoftmaxCrossEntropy,
    WithCoverageLoss,
    WithCTCLoss,
    output_cross_entropy,
)


def build_featurizers(data: DataConfig, pairs: list[Pair]) -> tuple[SourceFeaturizer, TextFeaturizer]:
    """Source and target featurizers: tokenizers (SentencePiece trained on ``pairs``) and
    vocabularies of the training pairs; for audio sources, log-mel features whose global
    normalisation is computed on the training audio."""
    if data.source == "audio":
        tgt_tokenizer = build_tokenizer(data.tgt_tokenizer, [p.tgt for p in pairs])
        tgt_tokens = [tgt_tokenizer.encode(p.tgt) for p in pairs]
        audio = audio_featurizer(data)
        if audio.normalization == "global":
            audio.fit(p.src for p in pairs)
        return audio, TextFeaturizer(
            tgt_tokenizer, Vocabulary.build(tgt_tokens, data.max_vocab_size, data.min_freq)
        )
    src_tokenizer, tgt_tokenizer = build_tokenizers(data, pairs)
    src_tokens = [src_tokenizer.encode(p.src) for p in pairs] + sampled_pieces(
        data.src_tokenizer, src_tokenizer
    )
    tgt_tokens = [tgt_tokenizer.encode(p.tgt) for p in pairs] + sampled_pieces(
        data.tgt_tokenizer, tgt_tokenizer
    )
    src_vocab, tgt_vocab = build_vocabularies(data, src_tokens, tgt_tokens)
    return TextFeaturizer(src_tokenizer, src_vocab), TextFeaturizer(tgt_tokenizer, tgt_vocab)


def audio_featurizer(data: DataConfig) -> AudioFeaturizer:
    audio = data.audio
    return AudioFeaturizer(
        audio.sample_rate,
        audio.num_mel_bins,
        audio.frame_length_ms,
        audio.frame_shift_ms,
        audio.normalization,
    )


def load_featurizers(data: DataConfig, directory: Path) -> tuple[SourceFeaturizer, TextFeaturizer]:
    """The featurizers saved in a model directory (``Pipeline.save``)."""
    target = TextFeaturizer.load(data.tgt_tokenizer.type, directory, "tgt")
    if data.source == "audio":
        return audio_featurizer(data).load_statistics(directory, "src"), target
    return TextFeaturizer.load(data.src_tokenizer.type, directory, "src"), target


def build_tokenizers(data: DataConfig, pairs: list[Pair]) -> tuple[Tokenizer, Tokenizer]:
    """Source and target tokenizers; with ``joint_sentencepiece``, or a shared vocabulary and the
    same SentencePiece settings on both sides, one SentencePiece model is trained on both sides' text."""
    src_texts, tgt_texts = [p.src for p in pairs], [p.tgt for p in pairs]
    same = data.src_tokenizer.segmenter == data.tgt_tokenizer.segmenter
    joint = (data.shared_vocab or data.joint_sentencepiece) and same
    if joint and data.src_tokenizer.type == "sentencepiece":
        tokenizer = build_tokenizer(data.src_tokenizer, src_texts + tgt_texts)
        return tokenizer, tokenizer
    return build_tokenizer(data.src_tokenizer, src_texts), build_tokenizer(data.tgt_tokenizer, tgt_texts)


def sampled_pieces(config: TokenizerConfig, tokenizer: Tokenizer) -> list[list[str]]:
    """Where a side samples its segmentations, all its SentencePiece pieces, as one more sequence
    for its vocabulary: a sampled segmentation uses pieces that the best ones never do."""
    if config.sampling.alpha and isinstance(tokenizer, SentencePieceTokenizer):
        return [tokenizer.pieces()]
    return []


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
    """Source and target vocabularies (one object for both when shared); the source's holds the
    training sources' tags (data.extra_train)."""
    if data.shared_vocab:
        shared = Vocabulary.build(src_tokens + tgt_tokens, data.max_vocab_size, data.min_freq, data.tags)
        return shared, shared
    return (
        Vocabulary.build(src_tokens, data.max_vocab_size, data.min_freq, data.tags),
        Vocabulary.build(tgt_tokens, data.max_vocab_size, data.min_freq),
    )


# field_match ignores the source vocabulary's most frequent tokens (after the specials): the
# articles, prepositions and punctuation that match everywhere
COMMON_TOKENS = 100


def separator_id(vocab: Vocabulary | None) -> int | None:
    """The id of ``<sep>`` in a source vocabulary, or None (one field, or audio: no vocabulary)."""
    return None if vocab is None else vocab.index.get(FIELD_SEPARATOR)


def match_keys(vocab: Vocabulary) -> list[int]:
    """Per token id, the id field_match compares (encoder.field_match_normalized): the first, most
    frequent, token of the same lower-cased text without SentencePiece's word-boundary mark, so
    "▁The", "The" and "the" match one another; a bare mark gets <pad>'s id, which never matches."""
    first: dict[str, int] = {}
    keys = []
    for token_id, token in enumerate(vocab.tokens):
        text = token.replace(SPACE, "").lower()
        keys.append(first.setdefault(text, token_id) if text else PAD_ID)
    return keys


def build_frontend(config: ModelConfig, src_size: int, source_vocab: Vocabulary | None = None) -> Frontend:
    """What the encoder reads its input through: token embeddings (with the field-match feature
    where configured, which reads ``source_vocab``'s ``<sep>`` and tokens), or for audio frames of
    ``src_size`` bins frame stacking or the convolutional subsampler (with SpecAugment where
    configured). Embeddings are embedding_size wide, or a Transformer's d_model."""
    size = config.transformer.d_model if config.architecture == "transformer" else config.embedding_size
    if config.frontend == "embedding" and config.encoder.field_match:
        separator = separator_id(source_vocab)
        if source_vocab is None or separator is None:
            raise ConfigError(f"model.encoder.field_match: the source vocabulary has no {FIELD_SEPARATOR}")
        keys = match_keys(source_vocab) if config.encoder.field_match_normalized else None
        return FieldMatchEmbedding(src_size, size, PAD_ID, separator, len(SPECIALS) + COMMON_TOKENS, keys)
    if config.frontend == "embedding":
        return TokenEmbedding(src_size, size, PAD_ID)
    masks = config.spec_augment
    augment = None
    if masks.freq_masks or masks.time_masks:
        augment = SpecAugment(
            masks.freq_masks, masks.freq_width, masks.time_masks, masks.time_width, masks.max_time_ratio
        )
    if config.frontend == "stack":
        return FrameStacking(src_size, config.frame_stack, augment)
    return Conv2dSubsampling(src_size, config.frontend_channels, size, augment)


def build_model(
    config: ModelConfig,
    src_size: int,
    tgt_vocab_size: int,
    ops: Ops | None = None,
    device: torch.device | str | None = None,
    source_vocab: Vocabulary | None = None,
) -> Network:
    """The configured network on ``device`` (default: torch's default device); ``ops`` switches
    the speed kernels (default: those of that device). ``src_size``: the source vocabulary's
    size, or the feature bins of audio frames (``SourceFeaturizer.input_size``); ``source_vocab``:
    the source vocabulary (its ``<sep>`` and tokens), which field_match and a reader need."""
    device = torch.device(device) if device is not None else torch.get_default_device()
    ops = ops if ops is not None else ops_for(device)
    if config.architecture == "transformer":
        return _transformer(config, src_size, tgt_vocab_size, ops, source_vocab).to(device)
    dec = config.decoder
    if dec.output == "pointer":
        return _reader(config, src_size, source_vocab).to(device)
    if dec.copy:  # the copy loss reads the attention, whose gradient the input-feeding kernel drops
        ops = dataclasses.replace(ops, input_feeding_lstm=None)
    encoder = _recurrent_encoder(config, src_size, source_vocab, ops)
    attention = None
    if dec.context == "attention":
        attention = Attention(
            kind=dec.attention,
            query_size=dec.hidden_size,
            memory_size=encoder.output_size,
            attention_size=dec.hidden_size,
            coverage=dec.coverage,
            location=(dec.location_filters, dec.location_width) if dec.location else None,
        )
    decoder = RecurrentDecoder(
        vocab_size=tgt_vocab_size,
        embedding_size=config.embedding_size,
        hidden_size=dec.hidden_size,
        num_layers=dec.num_layers,
        rnn_type=config.rnn_type,
        dropout=config.dropout,
        memory_size=encoder.output_size,
        context="init" if dec.context == "none" else dec.context,  # from NoSource's zero context
        attention=attention,
        input_feeding=dec.input_feeding,
        feature_size=dec.hidden_size,
        tie_embeddings=dec.tie_embeddings,
        pad_id=PAD_ID,
        ops=ops,
    )
    copy_gate = nn.Linear(dec.hidden_size + config.embedding_size, 1) if dec.copy else None
    ctc_head = nn.Linear(encoder.output_size, tgt_vocab_size) if config.ctc_weight > 0 else None
    return Seq2Seq(encoder, decoder, copy_gate, UNK_ID, ctc_head).to(device)


def _recurrent_encoder(
    config: ModelConfig, src_size: int, source_vocab: Vocabulary | None, ops: Ops
) -> RecurrentEncoder | NoSource:
    """The (bi)RNN encoder of ``config``, or for a language model (context none) one that reads nothing."""
    if config.decoder.context == "none":
        return NoSource()
    enc = config.encoder
    return RecurrentEncoder(
        frontend=build_frontend(config, src_size, source_vocab),
        hidden_size=enc.hidden_size,
        num_layers=enc.num_layers,
        rnn_type=config.rnn_type,
        bidirectional=enc.bidirectional,
        dropout=config.dropout,
        pooling=enc.pooling,
        ops=ops,
    )


def _reader(config: ModelConfig, src_size: int, source_vocab: Vocabulary | None) -> PointerReader:
    """A pointer reader of "question <sep> paragraph" with the encoder's sizes."""
    separator = separator_id(source_vocab)
    if separator is None:
        raise ConfigError("model.decoder.output pointer reads a source of two fields (question, paragraph)")
    enc = config.encoder
    frontend = build_frontend(config, src_size, source_vocab)
    return PointerReader(
        frontend, separator, enc.hidden_size, enc.num_layers, config.rnn_type, config.dropout
    )


def _transformer(
    config: ModelConfig, src_size: int, tgt_vocab_size: int, ops: Ops, source_vocab: Vocabulary | None
) -> Seq2Seq:
    """The Transformer of ``config.transformer`` through the same frontends and output heads."""
    t = config.transformer
    sizes: dict[str, Any] = dict(  # what both stacks are built with
        d_model=t.d_model,
        heads=t.heads,
        ff_size=t.ff_size,
        dropout=t.dropout,
        attention_dropout=t.attention_dropout,
        norm=t.norm,
        positions=t.positions,
        max_positions=t.max_positions,
        ops=ops,
    )
    frontend = build_frontend(config, src_size, source_vocab)
    encoder = TransformerEncoder(frontend=frontend, layers=t.encoder_layers, **sizes)
    decoder = TransformerDecoder(
        vocab_size=tgt_vocab_size,
        layers=t.decoder_layers,
        pad_id=PAD_ID,
        tie_embeddings=config.decoder.tie_embeddings,
        **sizes,
    )
    if t.share_embeddings:  # one vocabulary (data.shared_vocab): one matrix for both sides' tokens
        assert isinstance(frontend, TokenEmbedding)
        decoder.embedding.weight = frontend.weight
        if config.decoder.tie_embeddings:
            decoder.output_layer.weight = frontend.weight
    copy_gate = nn.Linear(2 * t.d_model, 1) if config.decoder.copy else None
    ctc_head = nn.Linear(t.d_model, tgt_vocab_size) if config.ctc_weight > 0 else None
    # learned positions end: the decoder reads <sos> y_1 .. y_n, at most max_positions tokens
    limit = t.max_positions if t.positions == "learned" else None
    return Seq2Seq(encoder, decoder, copy_gate, UNK_ID, ctc_head, max_output_positions=limit)


def model_for(
    config: ModelConfig,
    source: SourceFeaturizer,
    target: TextFeaturizer,
    device: torch.device | str | None = None,
) -> Network:
    """The configured network sized for these featurizers (``build_featurizers``)."""
    return build_model(config, source.input_size, len(target.vocab), device=device, source_vocab=source.vocab)


def build_loss(
    model: Network, ops: Ops | None = None, coverage_weight: float = 0.0, ctc_weight: float = 0.0
) -> Loss:
    """The loss of the model's output kind, with ``ops``'s fused output-layer kernel if it has one
    (default: the kernels of the model's device), plus the coverage loss for a model with coverage,
    and joint with CTC for a model with a CTC head."""
    if isinstance(model, PointerReader):
        return BoundaryLoss()
    ops = ops if ops is not None else ops_for(next(model.parameters()).device)
    match model.output_kind:
        case "softmax":
            loss: Loss = SoftmaxCrossEntropy(
                model.output_layer, ops.output_cross_entropy or output_cross_entropy
            )
        case "pointer_generator":
            loss = PointerGeneratorLoss(model.output_layer)
        case _:
            raise ConfigError(f"no loss for model output {model.output_kind!r}")
    if model.decoder.coverage and coverage_weight > 0:
        loss = WithCoverageLoss(loss, coverage_weight)
    if model.ctc_head is not None and ctc_weight > 0:
        loss = WithCTCLoss(loss, ctc_weight, blank=PAD_ID)
    return loss
