"""Greedy search, and beam search over (batch x beam) tensors held by a small ``Beams`` class.

Search talks to the model only through ``encode``, ``init_state``, ``step`` and the state's
``select``; it never asks which kind of model it runs. With beam size 1, beam search returns
exactly what greedy search returns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import torch

from seq2seqkit.data.vocab import EOS_ID, PAD_ID, SOS_ID


class Decodable(Protocol):
    """What search reads a model through: one network (``Seq2Seq``) or an ensemble of them. The
    encoding and the state are the model's own (each with ``select(rows)``)."""

    def encode(
        self, src: torch.Tensor, src_lengths: torch.Tensor, extended_ids: torch.Tensor | None = None
    ) -> Any: ...

    def init_state(self, enc: Any) -> Any: ...

    def step(
        self, prev_token: torch.Tensor, enc: Any, state: Any, needed: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, Any, torch.Tensor | None]: ...


@dataclass
class Hypothesis:
    """token_ids: output ids without <eos>; score: sum of log-probabilities (<eos> included);
    attention: (len(token_ids) + 1, src_len) weights per output step (the last is for <eos>),
    or None for a model without attention."""

    token_ids: list[int]
    score: float
    attention: torch.Tensor | None


@dataclass
class Sampler:
    """Random sampling in place of the most probable token (how Edunov et al., 2018 back-translate):
    each next token is drawn from the model's distribution at ``temperature``, restricted to the
    ``top_k`` most probable tokens (0: the whole vocabulary); the same ``seed`` draws the same."""

    top_k: int = 0
    temperature: float = 1.0
    seed: int = 1
    _generator: torch.Generator | None = None  # made on the device of the first draw

    def pick(self, log_probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log-probability, token) drawn for each row of log_probs (batch, V); the score is the
        model's own log-probability of the token, not the tempered one."""
        if self._generator is None:
            self._generator = torch.Generator(log_probs.device).manual_seed(self.seed)
        logits = log_probs / self.temperature
        if 0 < self.top_k < logits.size(-1):
            kth = logits.topk(self.top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        token = torch.multinomial(logits.softmax(-1), 1, generator=self._generator)
        return log_probs.gather(-1, token).squeeze(1), token.squeeze(1)


def length_penalty(length: torch.Tensor, alpha: float) -> torch.Tensor:
    """((5 + |Y|) / 6) ** alpha (Wu et al., 2016); alpha 0 ranks by raw log-probability."""
    return ((5.0 + length.float()) / 6.0) ** alpha


def coverage_penalty(coverage: torch.Tensor, src_lengths: torch.Tensor, beta: float) -> torch.Tensor:
    """beta * sum_i log(min(sum_t a_ti, 1)) over each source's positions (Wu et al., 2016): at
    most 0, and lower the more source tokens the output's attention left uncovered.
    coverage: (..., S) attention summed over output steps; src_lengths broadcasts against (...)."""
    positions = torch.arange(coverage.size(-1), device=coverage.device)
    logs = coverage.clamp(1e-10, 1.0).log().masked_fill(positions >= src_lengths.unsqueeze(-1), 0.0)
    return beta * logs.sum(-1)


@torch.inference_mode()
def greedy_search(
    model: Decodable,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    max_lengths: torch.Tensor,
    min_length: int = 0,
    extended_ids: torch.Tensor | None = None,
    block_ngram_repeat: int = 0,
    spans: SourceSpans | None = None,
    sampler: Sampler | None = None,
) -> list[Hypothesis]:
    """The most probable next token at every step (with a ``sampler``, a drawn one), for a batch;
    stops at <eos> or max length, and not before ``min_length`` tokens; no n-gram of
    ``block_ngram_repeat`` tokens twice; with ``spans`` only spans of the source.
    ``extended_ids``: the sources' ids for a copying model.

    A finished row leaves the batch, so the remaining steps cost only what is still running."""
    batch, steps, device = src.size(0), int(max_lengths.max()), src.device
    enc = model.encode(src, src_lengths, extended_ids)
    state = model.init_state(enc)
    active = torch.arange(batch, device=device)  # the batch rows still decoding
    prev = torch.full((batch,), SOS_ID, dtype=torch.long, device=device)
    tokens = torch.full((batch, steps), PAD_ID, dtype=torch.long, device=device)
    scores = torch.zeros(batch, device=device)
    lengths = torch.zeros(batch, dtype=torch.long, device=device)  # <eos> included
    attention: torch.Tensor | None = None  # (batch, steps, src_len)
    for step in range(steps):
        log_probs, state, attn = model.step(prev, enc, state)
        if spans is not None:
            log_probs = spans.allowed(log_probs.float())
        log_probs = _allowed(log_probs.float(), step + 1 >= max_lengths[active], step >= min_length)
        if block_ngram_repeat:
            log_probs = block_repeats(log_probs, tokens[active, :step], block_ngram_repeat)
        best, token = log_probs.max(dim=-1) if sampler is None else sampler.pick(log_probs)
        tokens[active, step] = token
        scores[active] += best
        lengths[active] += 1
        if attn is not None:
            if attention is None:
                attention = torch.zeros(batch, steps, attn.size(-1), device=device)
            attention[active, step] = attn.float()
        going = token != EOS_ID
        if not going.any():
            break
        keep = going.nonzero().squeeze(1)
        if spans is not None:
            spans.advance(keep, token[keep])
        if keep.numel() < going.numel():
            active, token = active[keep], token[keep]
            enc, state = enc.select(keep), state.select(keep)
        prev = token
    return [
        _hypothesis(tokens[b], int(lengths[b]), float(scores[b]), attention, b, int(src_lengths[b]))
        for b in range(batch)
    ]


def _allowed(log_probs: torch.Tensor, at_limit: torch.Tensor, eos_allowed: bool = True) -> torch.Tensor:
    """Never <pad> or <sos>; only <eos> where a hypothesis reached its maximum length; no <eos>
    elsewhere unless ``eos_allowed`` (the minimum length is reached)."""
    log_probs[..., PAD_ID] = float("-inf")
    log_probs[..., SOS_ID] = float("-inf")
    if not eos_allowed:
        log_probs[..., EOS_ID][~at_limit] = float("-inf")
    if at_limit.any():
        eos = log_probs[at_limit][..., EOS_ID].clone()
        log_probs[at_limit] = float("-inf")
        log_probs[..., EOS_ID][at_limit] = eos
    return log_probs


def block_repeats(log_probs: torch.Tensor, history: torch.Tensor, n: int) -> torch.Tensor:
    """log_probs (..., V) with -inf for each token that would make its row repeat an n-gram of its
    ``history`` (..., t) of tokens so far (OpenNMT-py's block_ngram_repeat); n = 0: unchanged."""
    steps = history.size(-1)
    if n <= 0 or steps < n:
        return log_probs
    windows = history.unfold(-1, n, 1)  # ..., steps - n + 1, n: every n-gram so far
    prefix = history[..., steps - n + 1 :].unsqueeze(-2)  # the last n - 1 tokens
    repeats = (windows[..., : n - 1] == prefix).all(-1)  # n-grams that start like the next would
    penalty = torch.where(repeats, float("-inf"), 0.0).to(log_probs.dtype)
    return log_probs + torch.zeros_like(log_probs).scatter_reduce_(-1, windows[..., -1], penalty, "amin")


class Span(NamedTuple):
    """Where one source's outputs may come from: each position's id over the output vocabulary,
    -1 where a position may not be output (the question, the separator), and whether a word
    starts or ends there (``Tokenizer.word_edges``)."""

    ids: Sequence[int]
    starts: Sequence[bool]
    ends: Sequence[bool]


# <eos> inside a word: so costly that an output ends there only when it must (at its length limit)
INSIDE_A_WORD = -1e4


class SourceSpans:
    """Outputs that are spans of the source (extractive QA: an answer copied from its context):
    whole words, each output token continuing one contiguous stretch of the allowed positions.

    ids: (rows, S) as ``Span.ids``, padded with -1; starts, ends: (rows, S) bool, as ``Span``'s.
    A row with no allowed position is not constrained."""

    def __init__(self, ids: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor) -> None:
        self.ids, self.starts, self.word_ends = ids, starts, ends
        self.ends: torch.Tensor | None = None  # (rows, S) where the output so far may end

    @classmethod
    def of(cls, spans: Sequence[Span], device: torch.device) -> SourceSpans:
        """The spans of a batch of sources, on ``device``."""
        width = max(len(span.ids) for span in spans)

        def padded(values: Sequence[Sequence[Any]], fill: Any, dtype: torch.dtype) -> torch.Tensor:
            rows = [[*row, *[fill] * (width - len(row))] for row in values]
            return torch.tensor(rows, dtype=dtype, device=device)

        return cls(
            padded([s.ids for s in spans], -1, torch.long),
            padded([s.starts for s in spans], False, torch.bool),
            padded([s.ends for s in spans], False, torch.bool),
        )

    def repeat(self, k: int) -> SourceSpans:
        """Each row k times (a beam of k hypotheses per source)."""
        return SourceSpans(*(t.repeat_interleave(k, dim=0) for t in (self.ids, self.starts, self.word_ends)))

    def _next(self) -> torch.Tensor:
        """(rows, S) the positions an output's next token may come from."""
        inside = self.ids >= 0
        if self.ends is None:
            return inside & self.starts
        after = torch.cat([torch.zeros_like(self.ends[:, :1]), self.ends[:, :-1]], dim=1)
        return after & inside

    def allowed(self, log_probs: torch.Tensor) -> torch.Tensor:
        """log_probs (rows, V) with -inf for every token that would leave a span, and <eos> only
        where the output holds a token and ends a word (else at the INSIDE_A_WORD cost)."""
        rows, vocab = log_probs.shape
        positions = torch.where(self._next(), self.ids, vocab)
        allowed = torch.zeros(rows, vocab + 1, dtype=torch.bool, device=log_probs.device)
        allowed = allowed.scatter_(1, positions, True)[:, :vocab]
        if self.ends is not None:
            allowed[:, EOS_ID] = True
        unconstrained = ~(self.ids >= 0).any(dim=1, keepdim=True)
        allowed |= unconstrained
        log_probs = log_probs.masked_fill(~allowed, float("-inf"))
        if self.ends is not None:
            whole = (self.ends & self.word_ends).any(dim=1) | unconstrained.squeeze(1)
            log_probs[:, EOS_ID] += torch.where(whole, 0.0, INSIDE_A_WORD).to(log_probs.dtype)
        return log_probs

    def advance(self, rows: torch.Tensor, tokens: torch.Tensor) -> None:
        """The new hypotheses: each continues current row ``rows[i]`` with ``tokens[i]``."""
        ids = self.ids[rows]
        self.ends = self._next()[rows] & (ids == tokens.unsqueeze(1))
        self.ids, self.starts, self.word_ends = ids, self.starts[rows], self.word_ends[rows]


class PrefixScorer(Protocol):
    """A second opinion on every hypothesis as it grows (``decoding/ctc.py``'s CTC prefix scores):
    ``joint`` turns the decoder's log-probabilities of the next tokens (rows, V) into the scores
    the search ranks by, and ``advance`` follows the search's choice of continuations."""

    def joint(self, att_log_probs: torch.Tensor) -> torch.Tensor: ...
    def advance(self, rows: torch.Tensor, tokens: torch.Tensor) -> None: ...


class Scorers:
    """Several prefix scorers in turn (CTC, then a language model): each one's ``joint`` reads the
    scores the one before it gave."""

    def __init__(self, scorers: Sequence[PrefixScorer]) -> None:
        self.scorers = list(scorers)

    def joint(self, att_log_probs: torch.Tensor) -> torch.Tensor:
        scores = att_log_probs
        for scorer in self.scorers:
            scores = scorer.joint(scores)
        return scores

    def advance(self, rows: torch.Tensor, tokens: torch.Tensor) -> None:
        for scorer in self.scorers:
            scorer.advance(rows, tokens)


def _hypothesis(
    tokens: torch.Tensor, length: int, score: float, attention: torch.Tensor | None, *index: int
) -> Hypothesis:
    """Cut one row of the search's tensors to its real length (``index`` = row..., src_len); the
    attention comes back on the CPU, where pictures and JSON read it."""
    *row, src_len = index
    ids = [t for t in tokens[:length].tolist() if t != EOS_ID]
    attn = None if attention is None else attention[tuple(row)][:length, :src_len].cpu()
    return Hypothesis(ids, score, attn)


class Beams:
    """The hypotheses of a batch's beams, as (batch, beam) tensors with back-pointers.

    Each step records, for every hypothesis, the beam it continues (``origin``), its new token and
    its attention; the output sequences are read back from these only at the end. A finished
    hypothesis stays in its beam, extended by padding at no cost. A source leaves the batch as
    soon as its ``nbest`` best finished hypotheses cannot be beaten by any unfinished one (see
    ``_settled``), and ranking by length-penalized score happens at the end.
    """

    def __init__(
        self,
        batch: int,
        beam_size: int,
        max_lengths: torch.Tensor,
        alpha: float = 0.0,
        nbest: int = 1,
        min_length: int = 0,
        block_ngram_repeat: int = 0,
        beta: float = 0.0,
    ) -> None:
        self.batch, self.k = batch, beam_size
        self.block = block_ngram_repeat
        self.max_lengths, self.min_length = max_lengths, min_length
        self.alpha, self.beta, self.nbest = alpha, beta, nbest
        self.device = device = max_lengths.device
        self.scores = torch.full((batch, beam_size), float("-inf"), device=device)
        self.scores[:, 0] = 0.0  # at the start all beams hold the same hypothesis: keep one
        self.lengths = torch.zeros(batch, beam_size, dtype=torch.long, device=device)  # <eos> included
        self.finished = torch.zeros(batch, beam_size, dtype=torch.bool, device=device)
        self.active = torch.arange(batch, device=device)  # sources still searching
        # each hypothesis's tokens so far (batch, beam, steps), kept only to block repeated n-grams
        self.history = torch.zeros(batch, beam_size, 0, dtype=torch.long, device=device)
        self.origins: list[torch.Tensor] = []  # per step (batch, beam)
        self.tokens: list[torch.Tensor] = []  # per step (batch, beam)
        self.attention: list[torch.Tensor] = []  # per step (batch, beam, src_len)

    @property
    def done(self) -> bool:
        return self.active.numel() == 0

    def needed(self) -> torch.Tensor | None:
        """The rows (active * K) whose next-token log-probabilities the next ``advance`` reads:
        the unfinished hypotheses' (a finished one continues with <pad> whatever the model says),
        or None when that is every row."""
        unfinished = ~self.finished[self.active].view(-1)
        return None if bool(unfinished.all()) else unfinished.nonzero().squeeze(1)

    def advance(
        self,
        step: int,
        log_probs: torch.Tensor,
        attn: torch.Tensor | None,
        needed: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Extend the active sources' beams by their best k continuations.

        log_probs: (active * K, V), rows grouped by source, or only the rows ``needed()`` named.
        Returns, for the sources still active afterwards, the rows of the current state that each
        new hypothesis continues (active' * K,) and the new last tokens (active' * K,).
        """
        active, k = self.active, self.k
        n, vocab = active.numel(), log_probs.size(-1)
        finished = self.finished[active]
        at_limit = ((step + 1 >= self.max_lengths[active]).unsqueeze(1) & ~finished).view(-1)
        if needed is not None:
            at_limit = at_limit[needed]
        log_probs = _allowed(log_probs.float(), at_limit, step >= self.min_length)
        if self.block:
            history = self.history[active].view(n * k, self.history.size(-1))
            log_probs = block_repeats(log_probs, history if needed is None else history[needed], self.block)
        # a source's k best continuations are among its hypotheses' own k best: rank those only
        # (n x K x K candidates instead of n x K x V)
        best, tokens = log_probs.topk(min(k, vocab), dim=-1)  # (rows, K)
        if needed is not None:  # the finished rows' entries are set below
            best = best.new_empty(n * k, best.size(1)).index_copy_(0, needed, best)
            tokens = tokens.new_empty(n * k, tokens.size(1)).index_copy_(0, needed, tokens)
        best, tokens = best.view(n, k, -1), tokens.view(n, k, -1)  # (n, K, K)
        best[finished] = float("-inf")  # a finished hypothesis continues only with <pad>, at no cost
        best[finished, 0] = 0.0
        tokens[finished] = PAD_ID

        candidates = (self.scores[active].unsqueeze(-1) + best).view(n, -1)
        scores, flat = candidates.topk(k, dim=-1)  # (n, K)
        origin, token = flat // best.size(-1), tokens.view(n, -1).gather(1, flat)
        was_finished = finished.gather(1, origin)
        self.scores[active] = scores
        self.lengths[active] = self.lengths[active].gather(1, origin) + (~was_finished).long()
        self.finished[active] = was_finished | (token == EOS_ID)
        self._record(origin, token, attn)
        if self.block:
            self._extend_history(origin, token)

        rows = (torch.arange(n, device=self.device).unsqueeze(1) * k + origin).view(-1)
        going = ~self._settled(active)
        if not going.all():
            self.active = active[going]
            keep = going.repeat_interleave(k)
            return rows[keep], token.view(-1)[keep]
        return rows, token.view(-1)

    def _extend_history(self, origin: torch.Tensor, token: torch.Tensor) -> None:
        """Each active hypothesis's tokens: those of the one it continues, then its new token."""
        steps = self.history.size(-1)
        history = torch.full((self.batch, self.k, steps + 1), PAD_ID, dtype=torch.long, device=self.device)
        continued = self.history[self.active].gather(1, origin.unsqueeze(-1).expand(-1, -1, steps))
        history[self.active] = torch.cat([continued, token.unsqueeze(-1)], dim=-1)
        self.history = history

    def _settled(self, sources: torch.Tensor) -> torch.Tensor:
        """Which of ``sources`` already hold their final ``nbest`` hypotheses.

        Log-probabilities are <= 0, so an unfinished hypothesis's score only falls, and its final
        length-penalized score is at most score / length_penalty(max length), penalties growing
        with length for alpha >= 0. A source is settled when its nbest-th best finished
        hypothesis beats that bound for every unfinished one. Then each of its nbest finished
        hypotheses also has a higher raw score than every unfinished one, so none is ever pushed
        out of the beam: the search returns exactly what running every beam to its end returns,
        in fewer steps. With alpha 0 the bound is tight (beam 5 on the Debian en-de test set: 1.8x
        faster); with alpha > 0 it uses the longest allowed output and rarely stops a source early.
        A coverage penalty is known only at the end, so with one a source runs until all its
        hypotheses finish.
        """
        scores, finished = self.scores[sources], self.finished[sources]
        if self.beta:
            return finished.all(dim=1)
        final = scores / length_penalty(self.lengths[sources], self.alpha)
        finished_best = final.masked_fill(~finished, float("-inf")).topk(self.nbest, dim=1).values[:, -1]
        bound = scores / length_penalty(self.max_lengths[sources], self.alpha).unsqueeze(1)
        unfinished_best = bound.masked_fill(finished, float("-inf")).max(dim=1).values
        # strictly better: an unfinished hypothesis could tie by adding a log-probability of 0
        return (finished_best > unfinished_best) | (unfinished_best == float("-inf"))

    def _record(self, origin: torch.Tensor, token: torch.Tensor, attn: torch.Tensor | None) -> None:
        """Back-pointers of this step for all sources; finished sources point at themselves."""
        full_origin = torch.arange(self.k, device=self.device).repeat(self.batch, 1)
        full_origin[self.active] = origin
        full_token = torch.full((self.batch, self.k), PAD_ID, dtype=torch.long, device=self.device)
        full_token[self.active] = token
        self.origins.append(full_origin)
        self.tokens.append(full_token)
        if attn is not None:  # rows follow their hypotheses' origins
            weights = attn.float().view(origin.size(0), self.k, -1)
            full_attn = weights.new_zeros(self.batch, self.k, weights.size(-1))
            full_attn[self.active] = weights.gather(1, origin.unsqueeze(-1).expand_as(weights))
            self.attention.append(full_attn)

    def _backtrack(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Every final hypothesis's tokens (batch, beam, steps) and attention (batch, beam, steps, S)."""
        beam = torch.arange(self.k, device=self.device).repeat(self.batch, 1)
        tokens = torch.full(
            (self.batch, self.k, len(self.tokens)), PAD_ID, dtype=torch.long, device=self.device
        )
        attention = None
        if self.attention:
            size = (self.batch, self.k, len(self.tokens), self.attention[0].size(-1))
            attention = torch.zeros(size, device=self.device)
        for t in reversed(range(len(self.tokens))):
            tokens[:, :, t] = self.tokens[t].gather(1, beam)
            if attention is not None:
                attention[:, :, t] = self.attention[t].gather(
                    1, beam.unsqueeze(-1).expand(-1, -1, attention.size(-1))
                )
            beam = self.origins[t].gather(1, beam)
        return tokens, attention

    def best(self, src_lengths: torch.Tensor) -> list[list[Hypothesis]]:
        """The ``nbest`` finished hypotheses of each source by score / length_penalty(alpha) +
        coverage_penalty(beta)."""
        tokens, attention = self._backtrack()
        ranked = self.scores / length_penalty(self.lengths, self.alpha)
        if self.beta and attention is not None:
            steps = torch.arange(attention.size(2), device=self.device)
            own_steps = (steps < self.lengths.unsqueeze(-1)).unsqueeze(-1)  # (batch, beam, steps, 1)
            coverage = (attention * own_steps).sum(2)
            ranked = ranked + coverage_penalty(coverage, src_lengths.unsqueeze(1), self.beta)
        ranked = ranked.masked_fill(~self.finished, float("-inf"))  # a settled source's stragglers
        order = ranked.argsort(dim=-1, descending=True)[:, : self.nbest]
        # a short source may allow fewer than nbest hypotheses: never return the impossible ones
        possible = ranked.gather(1, order) > float("-inf")
        possible[:, 0] = True
        return [
            [
                _hypothesis(
                    tokens[b, j],
                    int(self.lengths[b, j]),
                    float(self.scores[b, j]),
                    attention,
                    b,
                    j,
                    int(src_lengths[b]),
                )  # fmt: skip
                for j, ok in zip(order[b].tolist(), possible[b].tolist(), strict=True)
                if ok
            ]
            for b in range(self.batch)
        ]


@torch.inference_mode()
def beam_search(
    model: Decodable,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    max_lengths: torch.Tensor,
    beam_size: int,
    alpha: float = 0.0,
    nbest: int = 1,
    min_length: int = 0,
    extended_ids: torch.Tensor | None = None,
    block_ngram_repeat: int = 0,
    beta: float = 0.0,
    spans: SourceSpans | None = None,
    scorer_for: Callable[[Any, int], PrefixScorer] | None = None,
) -> list[list[Hypothesis]]:
    """The ``nbest`` best hypotheses of each source (batch, src_len[, features]), best first, none
    shorter than ``min_length`` tokens; ranked with a length penalty (alpha) and a coverage
    penalty (beta, a model with attention); with ``spans`` only spans of the source; with
    ``scorer_for`` (encoder output, rows per source -> PrefixScorer) by the scorer's joint scores."""
    if nbest > beam_size:
        raise ValueError(f"nbest ({nbest}) cannot exceed the beam size ({beam_size})")
    if alpha < 0:  # the early stop's bound needs penalties that grow with length
        raise ValueError(f"the length penalty must be at least 0, got {alpha}")
    batch, device = src.size(0), src.device
    enc = model.encode(src, src_lengths, extended_ids)  # one entry per source, shared by its K hypotheses
    rows = torch.arange(batch, device=device).repeat_interleave(beam_size)
    state = model.init_state(enc).select(rows)  # B*K rows
    beams = Beams(batch, beam_size, max_lengths, alpha, nbest, min_length, block_ngram_repeat, beta)
    prev = torch.full((batch * beam_size,), SOS_ID, dtype=torch.long, device=device)
    spans = None if spans is None else spans.repeat(beam_size)
    scorer = None if scorer_for is None else scorer_for(enc, beam_size)
    for step in range(int(max_lengths.max())):
        # the output layer only for unfinished hypotheses (spans and scorers read every row)
        needed = beams.needed() if spans is None and scorer is None else None
        hypotheses = prev.numel()
        log_probs, state, attn = model.step(prev, enc, state, needed)
        if spans is not None:
            log_probs = spans.allowed(log_probs.float())
        if scorer is not None:
            log_probs = scorer.joint(log_probs)
        rows, prev = beams.advance(step, log_probs, attn, needed)
        if spans is not None:
            spans.advance(rows, prev)
        if scorer is not None:
            scorer.advance(rows, prev)
        if beams.done:
            break
        if rows.numel() < hypotheses:  # sources left the batch
            enc = enc.select(rows[::beam_size] // beam_size)
        state = state.select(rows)
    return beams.best(src_lengths)
