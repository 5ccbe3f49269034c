"""Tokenizers: char / word / SentencePiece round trips, and rebuilding a saved tokenizer."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seq2seqkit.data.tokenizers import (
    CharTokenizer,
    SentencePieceTokenizer,
    Tokenizer,
    WordTokenizer,
    load_tokenizer,
)
from seq2seqkit.data.vocab import FIELD_SEPARATOR

PANGRAMS = (
    "the quick brown fox jumps over a lazy dog while seven wizards hex "
    "jovial boxing judges and pack my box with five dozen liquor jugs"
)
WORDS = PANGRAMS.split()
ALPHABET = sorted(set("".join(WORDS)))


def _corpus(lines: int = 400, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(3, 12))) for _ in range(lines)]


def _normalized(text: str) -> str:
    return " ".join(text.split())


ANY_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(text=ANY_TEXT.filter(lambda text: FIELD_SEPARATOR not in text))  # <sep> is one token by design
def test_char_round_trip(text: str) -> None:
    tokenizer = CharTokenizer()
    tokens = tokenizer.encode(text)
    assert all(len(token) == 1 for token in tokens)
    assert tokenizer.decode(tokens) == _normalized(text)


def test_char_keeps_one_space_token_per_whitespace_run() -> None:
    assert CharTokenizer().encode("  ab \t c\n") == ["a", "b", " ", "c"]


def test_char_round_trip_keeps_a_literal_sentencepiece_space_symbol() -> None:
    tokenizer = CharTokenizer()
    assert tokenizer.decode(tokenizer.encode("a\u2581b")) == "a\u2581b"


@settings(max_examples=200, deadline=None, derandomize=True)
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cs",))))
def test_word_round_trip(text: str) -> None:
    tokenizer = WordTokenizer()
    tokens = tokenizer.encode(text)
    assert all(token and not any(ch.isspace() for ch in token) for token in tokens)
    assert tokenizer.decode(tokens) == _normalized(text)


def test_word_splits_on_whitespace() -> None:
    assert WordTokenizer().encode("HH  AH0\tL OW1\n") == ["HH", "AH0", "L", "OW1"]


@pytest.fixture(scope="module", params=["bpe", "unigram"])
def spm(request: pytest.FixtureRequest) -> SentencePieceTokenizer:
    return SentencePieceTokenizer.train(_corpus(), vocab_size=120, model_type=request.param)


def test_sentencepiece_learns_subwords(spm: SentencePieceTokenizer) -> None:
    # frequent words of the corpus become single pieces; an unseen word falls apart into pieces
    assert spm.encode("the quick fox") == ["▁the", "▁quick", "▁fox"]
    assert len(spm.encode("boxjudges")) > 1


@pytest.mark.parametrize("model_type", ["bpe", "unigram"])
def test_sentencepiece_training_is_deterministic(model_type: str) -> None:
    first = SentencePieceTokenizer.train(_corpus(), vocab_size=120, model_type=model_type)  # type: ignore[arg-type]
    second = SentencePieceTokenizer.train(_corpus(), vocab_size=120, model_type=model_type)  # type: ignore[arg-type]
    assert first.model_proto == second.model_proto


@settings(max_examples=100, deadline=None, derandomize=True)
@given(words=st.lists(st.text(alphabet=ALPHABET, min_size=1, max_size=12), min_size=1, max_size=10))
def test_sentencepiece_round_trip(spm: SentencePieceTokenizer, words: list[str]) -> None:
    text = " ".join(words)
    pieces = spm.encode(text)
    assert pieces and pieces[0].startswith("▁")
    assert spm.decode(pieces) == text


def test_sentencepiece_round_trip_normalizes_whitespace(spm: SentencePieceTokenizer) -> None:
    assert spm.decode(spm.encode("  the   lazy\tdog  ")) == "the lazy dog"


def test_sentencepiece_save_and_load(spm: SentencePieceTokenizer, tmp_path: Path) -> None:
    assert spm.files("src") == {"src.spm.model": spm.model_proto}
    (tmp_path / "src.spm.model").write_bytes(spm.model_proto)
    loaded = load_tokenizer("sentencepiece", tmp_path, "src")
    assert isinstance(loaded, SentencePieceTokenizer)
    texts = [*_corpus(lines=50, seed=1), "jovial wizards", "unseen zyx words", "QUICK fox"]
    for text in texts:
        assert loaded.encode(text) == spm.encode(text)
        assert loaded.decode(spm.encode(text)) == spm.decode(spm.encode(text))


@pytest.mark.parametrize(("kind", "cls"), [("char", CharTokenizer), ("word", WordTokenizer)])
def test_load_char_and_word_need_no_files(kind: str, cls: type, tmp_path: Path) -> None:
    tokenizer = load_tokenizer(kind, tmp_path, "src")  # type: ignore[arg-type]
    assert isinstance(tokenizer, cls)
    assert tokenizer.files("src") == {}


def test_joint_sentencepiece_keeps_a_vocabulary_per_side() -> None:
    """One SentencePiece model for both languages, but each side's vocabulary holds only the pieces
    its own text uses (the target side's output layer gets no rows for source-only pieces)."""
    from seq2seqkit.build import build_tokenizers, build_vocabularies
    from seq2seqkit.config import DataConfig, TokenizerConfig
    from seq2seqkit.data.readers import Pair

    spm = TokenizerConfig(type="sentencepiece", vocab_size=60)
    data = DataConfig(train="x", src_tokenizer=spm, tgt_tokenizer=spm, joint_sentencepiece=True)
    src_text, tgt_text = _corpus(200, seed=1), [line.upper() for line in _corpus(200, seed=2)]
    pairs = [Pair(s, t) for s, t in zip(src_text, tgt_text, strict=True)]
    src_tok, tgt_tok = build_tokenizers(data, pairs)
    assert src_tok is tgt_tok
    src_vocab, tgt_vocab = build_vocabularies(
        data, [src_tok.encode(s) for s in src_text], [tgt_tok.encode(t) for t in tgt_text]
    )
    src_pieces, tgt_pieces = set(src_vocab.tokens[4:]), set(tgt_vocab.tokens[4:])
    assert any(c.isupper() for piece in tgt_pieces for c in piece)
    assert not any(c.islower() for piece in tgt_pieces for c in piece)  # the target text is upper case
    assert not any(c.isupper() for piece in src_pieces for c in piece)
    assert all(piece in tgt_pieces for t in tgt_text for piece in tgt_tok.encode(t))


def test_word_edges_mark_whole_words_of_every_tokenizer() -> None:
    char = CharTokenizer().encode("Gratz v. Bo")
    starts, ends = CharTokenizer().word_edges(char)
    assert [c for c, start in zip(char, starts, strict=True) if start] == ["G", "v", ".", "B"]
    assert [c for c, end in zip(char, ends, strict=True) if end] == ["z", "v", ".", "o"]
    pieces = ["\u2581Gr", "atz", "\u2581v", ".", "\u2581", "1843", ","]  # as SentencePiece cuts them
    sentencepiece = SentencePieceTokenizer.train(_corpus(), vocab_size=120, model_type="bpe")
    starts, ends = sentencepiece.word_edges(pieces)
    assert starts == [True, False, True, True, False, True, True]
    assert ends == [False, True, True, True, False, True, True]
    assert WordTokenizer().word_edges(["a", "b"]) == ([True, True], [True, True])


@pytest.mark.parametrize("kind", ["char", "word", "sentencepiece"])
def test_the_onnx_runtime_tokenizes_and_finds_words_as_the_package_does(kind: str, tmp_path: Path) -> None:
    """runtime.py (exports run without seq2seqkit) has its own tokenizers: the same tokens, word
    edges (a pointer reader's answers are whole words) and best windows of long sources."""
    pytest.importorskip("onnxruntime")
    from seq2seqkit.data.featurizers import Encoded, shorten
    from seq2seqkit.export import runtime

    texts = [*_corpus(40, seed=3), "Who wrote it? <sep> It was written by Ada Lovelace in 1843, in London."]
    package: Tokenizer = CharTokenizer() if kind == "char" else WordTokenizer()
    if kind == "sentencepiece":
        package = SentencePieceTokenizer.train([*_corpus(), texts[-1]], vocab_size=120, model_type="bpe")
        for name, content in package.files("src").items():
            (tmp_path / name).write_bytes(content)
    exported = runtime.Tokenizer(kind, tmp_path, "src")
    for text in texts:
        tokens = package.encode(text)
        assert exported.encode(text) == tokens
        assert exported.word_edges(tokens) == package.word_edges(tokens)
        for limit in (8, 20):
            cut = shorten(Encoded(list(range(len(tokens))), tokens), limit, window=True).labels
            assert runtime.shorten(tokens, limit, window=True) == cut
