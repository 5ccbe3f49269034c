"""Text in, text out over an exported model's ONNX graphs with onnxruntime: no PyTorch, no seq2seqkit.

``seq2seqkit export MODEL_DIR --format onnx --output DIR`` copies this file into DIR. It needs only
numpy, onnxruntime and, for SentencePiece models, sentencepiece:

    python DIR/runtime.py DIR --beam 5 < inputs.txt        # one output per input line
    OnnxModel("DIR").generate(["hello"], beam=5)[0].text    # from Python, with DIR on sys.path

Search stays outside the graphs (their interface: seq2seqkit/export/onnx.py) and follows the
package's decoding/search.py and decoding/generate.py rule for rule: sources sorted by length
into batches of ``batch_tokens``; an output's length, <eos> included, capped at
ceil(max_length_ratio * source length) + max_length_offset (and max_output_len + 1); <eos> not
before min_output_len tokens; greedy drops a row once it outputs <eos>; beam search keeps k
hypotheses per source (a finished one extended by padding at no cost), stops a source once no
unfinished hypothesis can beat its nbest finished ones, and ranks by score / ((5 + |Y|) / 6) **
alpha (Wu et al., 2016). Inputs over max_input_len tokens are cut to their start, or, for a model
trained with ``data.long_sources: window``, to their first fields and the window of the last field
that shares the most words with them (seq2seqkit/data/featurizers.py's ``shorten``).

A pointer reader's export has one graph, the boundary log-probabilities; its output is the
paragraph's own text of the best span of at most ``max_answer_words`` whole words
(seq2seqkit/decoding/span.py).

A speech model reads audio files (one path per input line): soundfile reads them, soxr resamples
them and kaldi-native-fbank computes the log-mel frames, as seq2seqkit/data/audio.py does, so
those three are needed too. Its decoding ``method`` is the package's (seq2seqkit/decoding/ctc.py):
``joint`` ranks hypotheses by the CTC head's prefix scores with the decoder's, ``ctc_greedy``
takes the CTC head's best path.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

PAD_ID, UNK_ID, SOS_ID, EOS_ID = range(4)
BLANK = PAD_ID  # CTC's blank
FIELD_SEPARATOR = "<sep>"
Arrays = dict[str, np.ndarray]
Sources = list[Any]  # per input: its token ids, or a speech model's frames (np.ndarray)


class Tokenizer:
    """The model's tokenizer: ``char``, ``word`` or ``sentencepiece`` (seq2seqkit/data/tokenizers.py)."""

    def __init__(self, kind: str, directory: Path, prefix: str) -> None:
        self.kind = kind
        self.processor = None
        if kind == "sentencepiece":
            import sentencepiece

            self.processor = sentencepiece.SentencePieceProcessor(
                model_proto=(directory / f"{prefix}.spm.model").read_bytes()
            )

    def encode(self, text: str) -> list[str]:
        if self.processor is not None:
            return self.processor.encode(text, out_type=str)
        if self.kind == "word":
            return text.replace(FIELD_SEPARATOR, f" {FIELD_SEPARATOR} ").split()
        first, *rest = text.split(FIELD_SEPARATOR)  # char: whitespace runs collapse to one space
        tokens = list(" ".join(first.split()))
        for field in rest:
            tokens += [FIELD_SEPARATOR, *" ".join(field.split())]
        return tokens

    def decode(self, tokens: list[str]) -> str:
        if self.processor is not None:
            return self.processor.decode_pieces(tokens)
        return ("" if self.kind == "char" else " ").join(tokens)

    def word_edges(self, tokens: list[str]) -> tuple[list[bool], list[bool]]:
        """Whether a word starts and whether one ends at each token: words are runs of letters and
        digits, each other character a word of its own, a space neither; each token of ``word``."""
        if self.kind == "word":
            return [True] * len(tokens), [True] * len(tokens)
        pieces = [token.replace("\u2581", " ") for token in tokens]  # SentencePiece's space mark

        def boundary(left: str, right: str) -> bool:
            return not (left[-1:].isalnum() and right[:1].isalnum())

        starts, ends = [], []
        for i, piece in enumerate(pieces):
            word = not piece.isspace()
            starts.append(word and boundary(pieces[i - 1] if i else " ", piece))
            ends.append(word and boundary(piece, pieces[i + 1] if i + 1 < len(pieces) else " "))
        return starts, ends


def context_start(tokens: list[str]) -> int:
    """The first position of the last field (after the last <sep>; 0 for one field)."""
    return len(tokens) - tokens[::-1].index(FIELD_SEPARATOR) if FIELD_SEPARATOR in tokens else 0


def shorten(tokens: list[str], limit: int, window: bool) -> list[str]:
    """``tokens`` cut to ``limit``: their start, or with ``window`` the first fields whole and the
    window of the last field holding the most of their words (lower case, without SentencePiece's
    space mark, 3 characters or more); the earliest among equals."""
    if len(tokens) <= limit or not window or FIELD_SEPARATOR not in tokens:
        return tokens[:limit]
    first = context_start(tokens)
    room = limit - first
    if room <= 0:
        return tokens[:limit]

    def word(token: str) -> str:
        lowered = token.lstrip("\u2581").lower()
        return lowered if len(lowered) > 2 else ""

    words = {word(token) for token in tokens[:first]} - {""}
    hits = np.array([word(token) in words for token in tokens[first:]], dtype=np.int64)
    counts = np.convolve(hits, np.ones(room, dtype=np.int64), "valid")  # hits per window start
    start = first + int(np.argmax(counts))
    return tokens[:first] + tokens[start : start + room]


class Vocabulary:
    """Token <-> id from a ``*_vocab.txt`` file (one token per line, specials first)."""

    def __init__(self, path: Path) -> None:
        self.tokens = path.read_text(encoding="utf-8").split("\n")[:-1]
        self.index = {token: i for i, token in enumerate(self.tokens)}

    def encode(self, tokens: list[str]) -> list[int]:
        return [self.index.get(token, UNK_ID) for token in tokens]

    def encode_extended(self, tokens: list[str]) -> tuple[list[int], list[str]]:
        """Ids over the vocabulary extended by the tokens it lacks, for a copying model: the k-th
        distinct unknown token gets the vocabulary size + k. Returns (ids, the unknowns in id order)."""
        extended: dict[str, int] = {}
        ids = []
        for token in tokens:
            i = self.index.get(token)
            ids.append(extended.setdefault(token, len(self.tokens) + len(extended)) if i is None else i)
        return ids, list(extended)

    def decode(self, ids: list[int], extended: list[str] | None = None) -> list[str]:
        """Tokens up to <eos>, without <pad> and <sos>; ids past the vocabulary name ``extended``."""
        out = []
        for i in ids:
            if i == EOS_ID:
                break
            if i not in (PAD_ID, SOS_ID):
                out.append(self.tokens[i] if i < len(self.tokens) else (extended or [])[i - len(self.tokens)])
        return out


class AudioFeatures:
    """An audio file -> (frames, bins) float32 normalised log-mel frames (seq2seqkit/data/audio.py)."""

    def __init__(self, settings: dict, directory: Path) -> None:
        self.settings = settings
        self.stats = None
        if settings["normalization"] == "global":
            raw = json.loads((directory / "src_cmvn.json").read_text(encoding="utf-8"))
            self.stats = (np.asarray(raw["mean"], np.float32), np.asarray(raw["std"], np.float32))

    def __call__(self, path: str) -> np.ndarray:
        import kaldi_native_fbank as knf
        import soundfile
        import soxr

        s = self.settings
        try:
            samples, rate = soundfile.read(path, dtype="float32", always_2d=True)
        except (RuntimeError, OSError) as err:
            raise ValueError(f"{path}: not a readable audio file ({str(err).splitlines()[0]})") from None
        samples = samples[:, 0]
        if samples.size == 0 or not np.isfinite(samples).all():
            raise ValueError(f"{path}: audio must hold finite samples")
        if rate != s["sample_rate"]:
            samples = soxr.resample(samples, rate, s["sample_rate"]).astype(np.float32)
        options = knf.FbankOptions()
        options.frame_opts.samp_freq = s["sample_rate"]
        options.frame_opts.frame_length_ms = s["frame_ms"]
        options.frame_opts.frame_shift_ms = s["shift_ms"]
        options.frame_opts.dither = 0.0
        options.mel_opts.num_bins = s["bins"]
        fbank = knf.OnlineFbank(options)
        fbank.accept_waveform(s["sample_rate"], samples * 32768.0)  # Kaldi reads 16-bit sample values
        fbank.input_finished()
        if not fbank.num_frames_ready:
            raise ValueError(f"{path}: shorter than one {s['frame_ms']:g} ms frame")
        frames = np.stack([fbank.get_frame(i) for i in range(fbank.num_frames_ready)]).astype(np.float32)
        if s["normalization"] == "utterance":
            frames = (frames - frames.mean(0)) / np.maximum(frames.std(0), 1e-5)
        elif self.stats is not None:
            frames = (frames - self.stats[0]) / self.stats[1]
        return frames.astype(np.float32)


def _session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    # threads that spin after a run keep the cores from the next session's run: three sessions
    # take turns every step (beam 5 on 8k pieces: 1.95 s without spinning, 3.76 s with)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class Graphs:
    """The encoder and decoder-step sessions. Every tensor they exchange is batch first: the
    source entries one per source, the state one row per hypothesis; the search selects rows of
    them without knowing which variant it runs."""

    def __init__(self, encoder: Path, step: Path, top_k: Path | None = None, threads: int = 0) -> None:
        self.encoder = _session(encoder, threads)
        self.decoder = _session(step, threads)
        self.top_k = None if top_k is None else _session(top_k, threads)
        self.encoder_inputs = [i.name for i in self.encoder.get_inputs()]
        self.encoder_outputs = [o.name for o in self.encoder.get_outputs()]
        self.step_outputs = [o.name for o in self.decoder.get_outputs()]
        self.decoder_inputs = [i.name for i in self.decoder.get_inputs()]

    @property
    def copying(self) -> bool:
        """Whether the step reads the source's extended ids (a pointer-generator)."""
        return "extended_ids" in self.decoder_inputs

    def encode(
        self, src: np.ndarray, src_lengths: np.ndarray, extended_ids: np.ndarray | None = None
    ) -> tuple[Arrays, Arrays]:
        """(source entries, initial state) for src (batch, src_len[, bins]) and src_lengths
        (batch,); a copying model's entries hold its ``extended_ids`` (batch, src_len) too, and a
        model with a CTC head's ``ctc_log_probs`` and ``ctc_lengths``, which the step does not read."""
        inputs = {"src": src, "src_lengths": src_lengths}
        # a language model's encoder reads neither: the exporter leaves unread inputs out
        values = self.encoder.run(None, {name: inputs[name] for name in self.encoder_inputs})
        named = dict(zip(self.encoder_outputs, values, strict=True))
        state = {k: v for k, v in named.items() if k.startswith("state_")}
        entries = {k: v for k, v in named.items() if k not in state}
        if extended_ids is not None:
            entries["extended_ids"] = extended_ids
        return entries, state

    def step(
        self, prev: np.ndarray, entries: Arrays, state: Arrays
    ) -> tuple[np.ndarray, Arrays, np.ndarray | None]:
        """Log-probabilities (rows, vocab), the new state, attention (rows, src_len) or None."""
        inputs = {name: value for name, value in entries.items() if not name.startswith("ctc_")}
        values = self.decoder.run(None, {"prev_tokens": prev, **inputs, **state})
        named = dict(zip(self.step_outputs, values, strict=True))
        new_state = {k.removeprefix("next_"): v for k, v in named.items() if k.startswith("next_")}
        return named["log_probs"], new_state, named.get("attention")

    def top(self, values: np.ndarray, k: int) -> np.ndarray:
        """Indices of the k largest values along the last axis, largest first."""
        if self.top_k is None or k >= values.shape[-1]:
            return _top(values, k)
        flat = np.ascontiguousarray(values.reshape(-1, values.shape[-1]), dtype=np.float32)
        _, indices = self.top_k.run(None, {"values": flat, "k": np.array([k], dtype=np.int64)})
        return indices.reshape(*values.shape[:-1], k)


def select(arrays: Arrays, rows: np.ndarray) -> Arrays:
    return {name: value[rows] for name, value in arrays.items()}


@dataclass
class Hypothesis:
    """token_ids without <eos>; score: the sum of log-probabilities, <eos> included."""

    token_ids: list[int]
    score: float


def _allowed(log_probs: np.ndarray, at_limit: np.ndarray, eos_allowed: bool = True) -> np.ndarray:
    """Never <pad> or <sos>; only <eos> at the length limit; no <eos> before ``eos_allowed``."""
    log_probs[..., PAD_ID] = -np.inf
    log_probs[..., SOS_ID] = -np.inf
    if not eos_allowed:
        log_probs[..., EOS_ID] = np.where(at_limit, log_probs[..., EOS_ID], -np.inf)
    if at_limit.any():
        eos = log_probs[..., EOS_ID].copy()
        log_probs[at_limit] = -np.inf
        log_probs[..., EOS_ID] = np.where(at_limit, eos, log_probs[..., EOS_ID])
    return log_probs


def _top(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest values along the last axis, largest first."""
    if k < values.shape[-1]:
        part = np.argpartition(-values, k - 1, axis=-1)[..., :k]
    else:
        part = np.broadcast_to(np.arange(values.shape[-1]), values.shape).copy()
    order = np.argsort(-np.take_along_axis(values, part, -1), axis=-1, kind="stable")
    return np.take_along_axis(part, order, -1)


def length_penalty(length: np.ndarray, alpha: float) -> np.ndarray:
    """((5 + |Y|) / 6) ** alpha (Wu et al., 2016), in float32 as the package computes it."""
    return ((np.float32(5.0) + length.astype(np.float32)) / np.float32(6.0)) ** np.float32(alpha)


def greedy_search(
    graphs: Graphs,
    src: np.ndarray,
    src_lengths: np.ndarray,
    max_lengths: np.ndarray,
    min_length: int = 0,
    extended_ids: np.ndarray | None = None,
    spans: SourceSpans | None = None,
) -> list[Hypothesis]:
    """The most probable token at every step (with ``spans``, of those that keep the output a
    span of the source); a row leaves the batch at <eos> or its limit."""
    batch, steps = src.shape[0], int(max_lengths.max())
    entries, state = graphs.encode(src, src_lengths, extended_ids)
    active = np.arange(batch)
    prev = np.full(batch, SOS_ID, dtype=np.int64)
    tokens = np.full((batch, steps), PAD_ID, dtype=np.int64)
    scores = np.zeros(batch, dtype=np.float32)
    lengths = np.zeros(batch, dtype=np.int64)
    for step in range(steps):
        log_probs, state, _ = graphs.step(prev, entries, state)
        if spans is not None:
            log_probs = spans.allowed(log_probs)
        log_probs = _allowed(log_probs, step + 1 >= max_lengths[active], step >= min_length)
        token = log_probs.argmax(-1)
        tokens[active, step] = token
        scores[active] += log_probs[np.arange(token.size), token]
        lengths[active] += 1
        going = token != EOS_ID
        if not going.any():
            break
        if spans is not None:
            spans.advance(np.flatnonzero(going), token[going])
        if not going.all():
            keep = np.flatnonzero(going)
            active, token = active[keep], token[keep]
            entries, state = select(entries, keep), select(state, keep)
        prev = token
    return [_hypothesis(tokens[b], int(lengths[b]), float(scores[b])) for b in range(batch)]


def _hypothesis(tokens: np.ndarray, length: int, score: float) -> Hypothesis:
    return Hypothesis([t for t in tokens[:length].tolist() if t != EOS_ID], score)


class Beams:
    """The hypotheses of a batch's beams as (batch, beam) arrays with back-pointers: a port of
    decoding/search.py's ``Beams`` (without attention, n-gram blocking and the coverage penalty)."""

    def __init__(
        self,
        batch: int,
        k: int,
        max_lengths: np.ndarray,
        alpha: float,
        nbest: int,
        min_length: int,
        top: Callable[[np.ndarray, int], np.ndarray] = _top,
    ) -> None:
        self.batch, self.k, self.alpha, self.nbest, self.top = batch, k, alpha, nbest, top
        self.max_lengths, self.min_length = max_lengths, min_length
        self.scores = np.full((batch, k), -np.inf, dtype=np.float32)
        self.scores[:, 0] = 0.0  # all beams start as the same hypothesis: keep one
        self.lengths = np.zeros((batch, k), dtype=np.int64)  # <eos> included
        self.finished = np.zeros((batch, k), dtype=bool)
        self.active = np.arange(batch)
        self.origins: list[np.ndarray] = []
        self.tokens: list[np.ndarray] = []

    @property
    def done(self) -> bool:
        return self.active.size == 0

    def advance(self, step: int, log_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Extend the active sources' beams; returns the rows of the current state each new
        hypothesis continues and its token, for the sources still active afterwards."""
        active, k = self.active, self.k
        n, vocab = active.size, log_probs.shape[-1]
        finished = self.finished[active]
        at_limit = (step + 1 >= self.max_lengths[active])[:, None] & ~finished
        log_probs = _allowed(log_probs.reshape(n, k, vocab), at_limit, step >= self.min_length)
        width = min(k, vocab)
        tokens = self.top(log_probs, width)  # a source's k best are among its hypotheses' own k best
        best = np.take_along_axis(log_probs, tokens, -1)
        best[finished] = -np.inf
        best[finished, 0] = 0.0  # a finished hypothesis continues with <pad> at no cost
        tokens[finished] = PAD_ID
        candidates = (self.scores[active][:, :, None] + best).reshape(n, -1)
        flat = _top(candidates, k)
        origin, token = flat // width, np.take_along_axis(tokens.reshape(n, -1), flat, 1)
        was_finished = np.take_along_axis(finished, origin, 1)
        self.scores[active] = np.take_along_axis(candidates, flat, 1)
        self.lengths[active] = np.take_along_axis(self.lengths[active], origin, 1) + ~was_finished
        self.finished[active] = was_finished | (token == EOS_ID)
        self._record(origin, token)
        rows = (np.arange(n)[:, None] * k + origin).reshape(-1)
        going = ~self._settled(active)
        if not going.all():
            self.active = active[going]
            keep = np.repeat(going, k)
            return rows[keep], token.reshape(-1)[keep]
        return rows, token.reshape(-1)

    def _settled(self, sources: np.ndarray) -> np.ndarray:
        """Sources whose nbest-th finished hypothesis beats every unfinished one's best possible
        final score (see decoding/search.py's ``Beams._settled``)."""
        scores, finished = self.scores[sources], self.finished[sources]
        final = scores / length_penalty(self.lengths[sources], self.alpha)
        finished_best = np.sort(np.where(finished, final, -np.inf), axis=1)[:, -self.nbest]
        bound = scores / length_penalty(self.max_lengths[sources], self.alpha)[:, None]
        unfinished_best = np.where(finished, -np.inf, bound).max(axis=1)
        return (finished_best > unfinished_best) | (unfinished_best == -np.inf)

    def _record(self, origin: np.ndarray, token: np.ndarray) -> None:
        full_origin = np.tile(np.arange(self.k), (self.batch, 1))
        full_origin[self.active] = origin
        full_token = np.full((self.batch, self.k), PAD_ID, dtype=np.int64)
        full_token[self.active] = token
        self.origins.append(full_origin)
        self.tokens.append(full_token)

    def best(self) -> list[list[Hypothesis]]:
        """Each source's nbest finished hypotheses by score / length_penalty(alpha), best first."""
        beam = np.tile(np.arange(self.k), (self.batch, 1))
        tokens = np.full((self.batch, self.k, len(self.tokens)), PAD_ID, dtype=np.int64)
        for t in reversed(range(len(self.tokens))):
            tokens[:, :, t] = np.take_along_axis(self.tokens[t], beam, 1)
            beam = np.take_along_axis(self.origins[t], beam, 1)
        ranked = np.where(self.finished, self.scores / length_penalty(self.lengths, self.alpha), -np.inf)
        order = np.argsort(-ranked, axis=-1, kind="stable")[:, : self.nbest]
        possible = np.take_along_axis(ranked, order, 1) > -np.inf
        possible[:, 0] = True
        return [
            [
                _hypothesis(tokens[b, j], int(self.lengths[b, j]), float(self.scores[b, j]))
                for j, ok in zip(order[b].tolist(), possible[b].tolist(), strict=True)
                if ok
            ]
            for b in range(self.batch)
        ]


INSIDE_A_WORD = np.float32(-1e4)  # the cost of <eos> inside a word: only at the length limit


class SourceSpans:
    """Outputs that are spans of whole words of the source's last field (extractive QA): a port of
    seq2seqkit/decoding/search.py's ``SourceSpans``. ids (rows, S): each position's output id, -1
    where no output may come from; starts, ends (rows, S): where words start and end. A row with
    no allowed position is not constrained."""

    def __init__(self, ids: np.ndarray, starts: np.ndarray, word_ends: np.ndarray) -> None:
        self.ids, self.starts, self.word_ends = ids, starts, word_ends
        self.ends: np.ndarray | None = None  # (rows, S) where the output so far may end

    @classmethod
    def of(cls, spans: list[tuple[list[int], list[bool], list[bool]]]) -> SourceSpans:
        width = max(len(ids) for ids, _, _ in spans)
        ids = np.full((len(spans), width), -1, dtype=np.int64)
        starts, ends = np.zeros((2, len(spans), width), dtype=bool)
        for row, (span_ids, span_starts, span_ends) in enumerate(spans):
            ids[row, : len(span_ids)], starts[row, : len(span_ids)] = span_ids, span_starts
            ends[row, : len(span_ids)] = span_ends
        return cls(ids, starts, ends)

    def repeat(self, k: int) -> SourceSpans:
        """Each row k times (a beam of k hypotheses per source)."""
        return SourceSpans(*(np.repeat(a, k, axis=0) for a in (self.ids, self.starts, self.word_ends)))

    def _next(self) -> np.ndarray:
        """(rows, S) the positions an output's next token may come from."""
        inside = self.ids >= 0
        if self.ends is None:
            return inside & self.starts
        return np.pad(self.ends[:, :-1], ((0, 0), (1, 0))) & inside

    def allowed(self, log_probs: np.ndarray) -> np.ndarray:
        """log_probs (rows, V), -inf for every token that would leave a span, and <eos> only where
        the output holds a token and ends a word (else at the INSIDE_A_WORD cost)."""
        rows, vocab = log_probs.shape
        allowed = np.zeros((rows, vocab + 1), dtype=bool)
        np.put_along_axis(allowed, np.where(self._next(), self.ids, vocab), True, 1)
        allowed = allowed[:, :vocab]
        if self.ends is not None:
            allowed[:, EOS_ID] = True
        unconstrained = ~np.any(self.ids >= 0, axis=1)
        allowed |= unconstrained[:, None]
        log_probs = np.where(allowed, log_probs, np.float32(-np.inf)).astype(np.float32)
        if self.ends is not None:
            whole = (self.ends & self.word_ends).any(1) | unconstrained
            log_probs[:, EOS_ID] += np.where(whole, np.float32(0.0), INSIDE_A_WORD)
        return log_probs

    def advance(self, rows: np.ndarray, tokens: np.ndarray) -> None:
        """Each new hypothesis continues current row ``rows[i]`` with ``tokens[i]``."""
        ids = self.ids[rows]
        self.ends = self._next()[rows] & (ids == tokens[:, None])
        self.ids, self.starts, self.word_ends = ids, self.starts[rows], self.word_ends[rows]


class CTCPrefixScorer:
    """CTC prefix scores of a beam search's hypotheses, for joint CTC/attention decoding: a port of
    seq2seqkit/decoding/ctc.py's ``CTCPrefixScorer`` (Watanabe et al., 2017). ``joint`` turns the
    decoder's log-probabilities (rows, V) into (1 - w) log p_att(c|g) + w (psi(g + c) - psi(g)) for
    the ``candidates`` best tokens (all of a character vocabulary), -inf for the others; <eos>
    always among them. log_probs: (sources, T, V), lengths (sources,)."""

    def __init__(
        self, log_probs: np.ndarray, lengths: np.ndarray, rows_per_source: int, weight: float, candidates: int
    ) -> None:
        x = np.repeat(log_probs.astype(np.float32), rows_per_source, axis=0).transpose(1, 0, 2).copy()
        beyond = np.arange(x.shape[0])[:, None] >= np.repeat(lengths, rows_per_source)[None, :]
        x[beyond] = -np.inf  # past a row's end only blanks, with probability 1
        x[..., BLANK] = np.where(beyond, np.float32(0.0), x[..., BLANK])
        self.x, self.weight, self.candidates = x, weight, min(candidates, x.shape[-1])
        blank_run = np.cumsum(x[..., BLANK], axis=0)
        self.r = np.stack([np.full_like(blank_run, -np.inf), blank_run], axis=-1)  # (T, rows, 2)
        self.psi = np.zeros(x.shape[1], dtype=np.float32)
        self.last = np.full(x.shape[1], -1, dtype=np.int64)  # no token yet
        self.pending: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def joint(self, att: np.ndarray) -> np.ndarray:
        att = att.astype(np.float32)
        eos_first = att.copy()
        eos_first[:, EOS_ID] = np.inf
        tokens = _top(eos_first, self.candidates)  # (rows, M)
        with np.errstate(invalid="ignore"):
            r, psi = self._extend(tokens)
            ctc = psi - self.psi[:, None]
            ctc[np.isnan(ctc)] = -np.inf  # a hypothesis CTC cannot emit stays out
            joint = self.weight * ctc
            if self.weight < 1:
                joint = joint + (1 - self.weight) * np.take_along_axis(att, tokens, 1)
        self.pending = (tokens, r, psi)
        scores = np.full_like(att, -np.inf)
        np.put_along_axis(scores, tokens, joint.astype(np.float32), 1)
        return scores

    def _extend(self, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """r (T, rows, M, 2) and psi (rows, M) of each row's hypothesis extended by each token."""
        steps = self.x.shape[0]
        x = np.take_along_axis(self.x, np.broadcast_to(tokens, (steps, *tokens.shape)), 2)  # (T, rows, M)
        total = np.logaddexp(self.r[..., 0], self.r[..., 1])[..., None]  # (T, rows, 1)
        # a repeated label must be separated by a blank: only the blank-ending paths continue
        phi = np.where((tokens == self.last[:, None])[None], self.r[..., 1:], total)
        r = np.full((steps, *tokens.shape, 2), -np.inf, dtype=np.float32)
        r[0, ..., 0] = np.where((self.last < 0)[:, None], x[0], -np.inf)
        blank = self.x[..., BLANK][..., None]
        for t in range(1, steps):
            r[t, ..., 0] = np.logaddexp(r[t - 1, ..., 0], phi[t - 1]) + x[t]
            r[t, ..., 1] = np.logaddexp(r[t - 1, ..., 0], r[t - 1, ..., 1]) + blank[t]
        psi = np.logaddexp.reduce(np.concatenate([r[:1, ..., 0], phi[:-1] + x[1:]]), axis=0)
        return r, np.where(tokens == EOS_ID, total[-1], psi)  # <eos>: the output is exactly g

    def advance(self, rows: np.ndarray, tokens: np.ndarray) -> None:
        """Each new hypothesis continues row ``rows[i]`` with ``tokens[i]`` (<pad> after <eos>)."""
        assert self.pending is not None, "advance() follows joint()"
        candidates, r, psi = self.pending
        match = candidates[rows] == tokens[:, None]
        found, index = match.any(1), match.argmax(1)
        self.r = np.where(found[None, :, None], r[:, rows, index], self.r[:, rows])
        self.psi = np.where(found, psi[rows, index], self.psi[rows])
        self.last = np.where(found, tokens, self.last[rows])
        self.x = self.x[:, rows]
        self.pending = None


class LanguageModelScorer:
    """Shallow fusion (seq2seqkit/decoding/fusion.py): weight * log p_lm of each next token added
    to the search's scores, from the language model's own exported graphs (it reads no source),
    kept in step with the search's ``rows`` hypotheses."""

    def __init__(self, graphs: Graphs, weight: float, rows: int) -> None:
        self.graphs, self.weight = graphs, weight
        self.entries, state = graphs.encode(np.zeros((rows, 1), np.int64), np.ones(rows, np.int64))
        self.log_probs, self.state, _ = graphs.step(np.full(rows, SOS_ID, np.int64), self.entries, state)

    def joint(self, scores: np.ndarray) -> np.ndarray:
        return scores.astype(np.float32) + self.weight * self.log_probs

    def advance(self, rows: np.ndarray, tokens: np.ndarray) -> None:
        """Each new hypothesis continues row ``rows[i]`` with ``tokens[i]`` (<pad> after <eos>)."""
        self.entries = select(self.entries, rows)
        self.log_probs, self.state, _ = self.graphs.step(tokens, self.entries, select(self.state, rows))


def ctc_greedy_search(graphs: Graphs, src: np.ndarray, src_lengths: np.ndarray) -> list[Hypothesis]:
    """The CTC head's best path, repeats merged and blanks dropped; its log-probability the score."""
    entries, _ = graphs.encode(src, src_lengths)
    log_probs, lengths = entries["ctc_log_probs"], entries["ctc_lengths"]
    hypotheses = []
    for row, length in enumerate(lengths.tolist()):
        path = log_probs[row, :length].argmax(-1).tolist()
        tokens = [c for t, c in enumerate(path) if c != BLANK and (t == 0 or c != path[t - 1])]
        hypotheses.append(Hypothesis(tokens, float(log_probs[row, :length].max(-1).sum())))
    return hypotheses


def beam_search(
    graphs: Graphs,
    src: np.ndarray,
    src_lengths: np.ndarray,
    max_lengths: np.ndarray,
    beam_size: int,
    alpha: float = 0.0,
    nbest: int = 1,
    min_length: int = 0,
    extended_ids: np.ndarray | None = None,
    ctc: tuple[float, int] | None = None,
    lm: tuple[Graphs, float] | None = None,
    spans: SourceSpans | None = None,
) -> list[list[Hypothesis]]:
    """The nbest best hypotheses of each source, best first. A source's entries are shared by
    its hypotheses, which are beam_size consecutive rows of the state. With ``ctc`` (weight,
    candidates) the CTC head's prefix scores join the decoder's (joint decoding), then with ``lm``
    (graphs, weight) a language model's; with ``spans`` outputs are spans of the source."""
    batch = src.shape[0]
    entries, state = graphs.encode(src, src_lengths, extended_ids)
    state = select(state, np.repeat(np.arange(batch), beam_size))
    beams = Beams(batch, beam_size, max_lengths, alpha, nbest, min_length, graphs.top)
    prev = np.full(batch * beam_size, SOS_ID, dtype=np.int64)
    scorers: list[CTCPrefixScorer | LanguageModelScorer] = []
    if ctc is not None:
        weight, candidates = ctc
        log_probs, lengths = entries["ctc_log_probs"], entries["ctc_lengths"]
        scorers.append(CTCPrefixScorer(log_probs, lengths, beam_size, weight, max(candidates, 2 * beam_size)))
    if lm is not None:
        scorers.append(LanguageModelScorer(lm[0], lm[1], batch * beam_size))
    spans = None if spans is None else spans.repeat(beam_size)
    for step in range(int(max_lengths.max())):
        log_probs, state, _ = graphs.step(prev, entries, state)
        if spans is not None:
            log_probs = spans.allowed(log_probs)
        for scorer in scorers:
            log_probs = scorer.joint(log_probs)
        rows, prev = beams.advance(step, log_probs)
        if spans is not None:
            spans.advance(rows, prev)
        for scorer in scorers:
            scorer.advance(rows, prev)
        if beams.done:
            break
        if rows.size < log_probs.shape[0]:  # sources left the batch
            entries = select(entries, rows[::beam_size] // beam_size)
        state = select(state, rows)
    return beams.best()


def best_span(
    log_probs: np.ndarray, starts: list[bool], ends: list[bool], max_words: int
) -> tuple[int, int, float] | None:
    """(first, last position, score) of the span maximising log P_start(i) + log P_end(j) over
    log_probs (2, S), where a word starts at i, one ends at j and at most max_words words lie
    between; None where no word can be an answer."""
    is_start, is_end = np.array(starts, dtype=bool), np.array(ends, dtype=bool)
    word = np.cumsum(is_start)
    scores = np.where(is_start, log_probs[0], -np.inf)[:, None] + np.where(is_end, log_probs[1], -np.inf)
    length = word[None, :] - word[:, None]
    allowed = (length >= 0) & (length < max_words) & np.triu(np.ones_like(scores, dtype=bool))
    scores = np.where(allowed, scores, -np.inf)
    best = int(np.argmax(scores))
    score = float(scores.flat[best])
    return (best // scores.shape[1], best % scores.shape[1], score) if np.isfinite(score) else None


def _pad(rows: list[list[int]]) -> np.ndarray:
    """(len(rows), longest) int64 array of ``rows``, padded with <pad>."""
    out = np.full((len(rows), max(len(row) for row in rows)), PAD_ID, dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def _pad_frames(rows: list[np.ndarray]) -> np.ndarray:
    """(len(rows), longest, bins) float32 array of ``rows``' frames, padded with zeros."""
    out = np.zeros((len(rows), max(len(row) for row in rows), rows[0].shape[1]), dtype=np.float32)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def token_batches(lengths: list[int], max_tokens: int) -> list[list[int]]:
    """Indices sorted by length, in batches of at most ``max_tokens`` padded tokens (+1 each)."""
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        size = lengths[i] + 1
        if current and max(longest, size) * (len(current) + 1) > max_tokens:
            batches.append(current)
            current, longest = [], 0
        current.append(i)
        longest = max(longest, size)
    return [*batches, current] if current else batches


@dataclass
class Output:
    """One input's nbest outputs, best first: (text, score) pairs."""

    hypotheses: list[tuple[str, float]]

    @property
    def text(self) -> str:
        return self.hypotheses[0][0]

    @property
    def score(self) -> float:
        return self.hypotheses[0][1]


class OnnxModel:
    """An exported model directory: tokenizers, vocabularies and the graphs (``int8``: the
    quantized ones, when exported with --quantize int8)."""

    def __init__(self, directory: str | Path, int8: bool = False, threads: int = 0) -> None:
        self.directory = directory = Path(directory)
        settings = json.loads((directory / "runtime.json").read_text(encoding="utf-8"))
        kind = "int8" if int8 else "float32"
        if kind not in settings["graphs"]:
            raise FileNotFoundError(f"{directory}: no {kind} graphs (export with --quantize int8)")
        self.decoding = settings["decoding"]
        self.reader = None
        if settings.get("output") == "pointer":
            (reader,) = settings["graphs"][kind]
            self.reader = _session(directory / reader, threads)
        else:
            encoder, step = settings["graphs"][kind]
            top_k = directory / settings["top_k"] if "top_k" in settings else None
            self.graphs = Graphs(directory / encoder, directory / step, top_k, threads)
        self.lm = None  # a language model fused into the search, exported into its own directory
        if self.decoding.get("lm"):
            lm = directory / self.decoding["lm"]
            lm_graphs = json.loads((lm / "runtime.json").read_text(encoding="utf-8"))["graphs"][kind]
            self.lm = Graphs(lm / lm_graphs[0], lm / lm_graphs[1], threads=threads)
        audio = settings.get("source") == "audio"  # absent from exports before speech
        self.audio = AudioFeatures(settings["audio"], directory) if audio else None
        self.src_tokenizer = Tokenizer(settings["src_tokenizer"], directory, "src")
        self.tgt_tokenizer = Tokenizer(settings["tgt_tokenizer"], directory, "tgt")
        self.src_vocab = None if audio else Vocabulary(directory / "src_vocab.txt")
        self.tgt_vocab = Vocabulary(directory / "tgt_vocab.txt")

    def generate(
        self, texts: list[str], beam: int | None = None, nbest: int = 1, length_penalty: float | None = None
    ) -> list[Output]:
        """Outputs for ``texts`` (a speech model: paths to audio files), in order; defaults from
        the model's decoding settings."""
        d = self.decoding
        beam = beam or d["beam_size"]
        if nbest > beam:
            raise ValueError(f"nbest ({nbest}) cannot exceed the beam size ({beam})")
        alpha = d["length_penalty"] if length_penalty is None else length_penalty
        window = d.get("window", False)  # absent from exports before it
        tokens: list[list[str]] = [[] for _ in texts]  # a speech model's sources have no tokens
        sources: Sources
        if self.audio is not None:
            sources = [self.audio(path)[: d["max_input_len"]] for path in texts]
        else:
            assert self.src_vocab is not None, "a text model has a source vocabulary"
            tokens = [shorten(self.src_tokenizer.encode(t), d["max_input_len"], window) for t in texts]
            sources = [self.src_vocab.encode(source) for source in tokens]
        if self.reader is not None:
            return self._read(tokens, sources)
        # a copying model: each source's ids over the target vocabulary extended by its unknown words
        no_extension: tuple[list[int], list[str]] = ([], [])
        copying = self.graphs.copying
        extended = [self.tgt_vocab.encode_extended(source) if copying else no_extension for source in tokens]
        spans = [self._span(t, ids) for t, (ids, _) in zip(tokens, extended, strict=True)]
        found: list[list[Hypothesis]] = [[Hypothesis([], 0.0)] for _ in texts]
        todo = [i for i, source in enumerate(sources) if len(source)]
        for positions in token_batches([len(sources[i]) for i in todo], d["batch_tokens"]):
            indices = [todo[p] for p in positions]
            src, src_lengths, max_lengths = self._batch([sources[i] for i in indices])
            extended_ids = _pad([extended[i][0] for i in indices]) if copying else None
            allowed = SourceSpans.of([spans[i] for i in indices]) if d.get("span_constrained") else None
            hyps = self._search(src, src_lengths, max_lengths, (beam, alpha, nbest), extended_ids, allowed)
            for i, h in zip(indices, hyps, strict=True):
                found[i] = h
        text = self.tgt_tokenizer.decode
        return [
            Output([(text(self.tgt_vocab.decode(h.token_ids, unknown)), h.score) for h in hyps])
            for hyps, (_, unknown) in zip(found, extended, strict=True)
        ]

    def _span(self, tokens: list[str], extended_ids: list[int]) -> tuple[list[int], list[bool], list[bool]]:
        """Where an output may come from (seq2seqkit/pipeline.py's ``_span``): the last field,
        whole words; each position's id over the output vocabulary there, else -1."""
        first = context_start(tokens)
        ids = extended_ids if self.graphs.copying else self.tgt_vocab.encode(tokens)
        starts, ends = self.src_tokenizer.word_edges(tokens)
        return [-1 if i < first or ids[i] == UNK_ID else ids[i] for i in range(len(tokens))], starts, ends

    def _search(
        self,
        src: np.ndarray,
        src_lengths: np.ndarray,
        max_lengths: np.ndarray,
        search: tuple[int, float, int],
        extended_ids: np.ndarray | None,
        spans: SourceSpans | None,
    ) -> list[list[Hypothesis]]:
        """One batch's nbest by the model's decoding method (seq2seqkit/decoding/generate.py);
        search: beam size, length penalty, nbest."""
        beam, alpha, nbest = search
        d = self.decoding
        method = d.get("method", "attention")  # absent from exports before speech
        if method == "ctc_greedy":
            return [[h] for h in ctc_greedy_search(self.graphs, src, src_lengths)]
        ctc = (d["ctc_weight"], d["ctc_candidates"]) if method == "joint" else None
        lm = None if self.lm is None else (self.lm, d["lm_weight"])
        if beam == 1 and ctc is None and lm is None:
            args = (src, src_lengths, max_lengths, d["min_output_len"], extended_ids, spans)
            found = greedy_search(self.graphs, *args)
            return [[h] for h in found]
        return beam_search(
            self.graphs, src, src_lengths, max_lengths, beam, alpha, nbest, d["min_output_len"], extended_ids,
            ctc, lm, spans,
        )  # fmt: skip

    def _read(self, sources: list[list[str]], ids: list[list[int]]) -> list[Output]:
        """A pointer reader's answers: the source's own text of its best span, or "" where none."""
        assert self.reader is not None
        found = [Output([("", 0.0)]) for _ in sources]
        todo = [i for i, source in enumerate(ids) if source]
        for positions in token_batches([len(ids[i]) for i in todo], self.decoding["batch_tokens"]):
            indices = [todo[p] for p in positions]
            src, src_lengths, _ = self._batch([ids[i] for i in indices])
            (log_probs,) = self.reader.run(None, {"src": src, "src_lengths": src_lengths})
            for row, i in enumerate(indices):
                tokens = sources[i]
                starts, ends = self.src_tokenizer.word_edges(tokens)
                limit = self.decoding["max_answer_words"]
                span = best_span(log_probs[row, :, : len(tokens)], starts, ends, limit)
                if span is not None:
                    first, last, score = span
                    found[i] = Output([(self.src_tokenizer.decode(tokens[first : last + 1]), score)])
        return found

    def _batch(self, sources: Sources) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Padded ids (or frames), lengths and each output's length limit (<eos> included)."""
        d = self.decoding
        lengths = np.array([len(ids) for ids in sources], dtype=np.int64)
        limits = [math.ceil(d["max_length_ratio"] * n) + d["max_length_offset"] for n in lengths.tolist()]
        if d["max_output_len"]:
            limits = [min(limit, d["max_output_len"] + 1) for limit in limits]
        src = _pad_frames(sources) if self.audio is not None else _pad(sources)
        return src, lengths, np.maximum(np.array(limits, dtype=np.int64), 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Generate with an exported model: one output per input line."
    )
    parser.add_argument("model", type=Path, help="directory written by `seq2seqkit export --format onnx`")
    parser.add_argument("--input", type=Path, help="input file, of audio paths for speech (default: stdin)")
    parser.add_argument("--beam", type=int, help="beam size (default: the model's; 1 = greedy)")
    parser.add_argument("--int8", action="store_true", help="use the int8 graphs")
    args = parser.parse_args(argv)
    try:
        model = OnnxModel(args.model, int8=args.int8)
    except (OSError, ValueError) as err:  # a missing or damaged export: one line, no traceback
        print(f"runtime.py: error: {err}", file=sys.stderr)
        return 1
    stream = args.input.open(encoding="utf-8") if args.input else sys.stdin
    lines = [line.rstrip("\n") for line in stream]
    try:
        outputs = model.generate(lines, beam=args.beam)
    except ValueError as err:  # an unreadable audio file, say
        print(f"runtime.py: error: {err}", file=sys.stderr)
        return 1
    for output in outputs:
        print(output.text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
