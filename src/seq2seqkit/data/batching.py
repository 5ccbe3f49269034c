"""Batching by a token budget with length bucketing, and padding into a ``Batch``.

Examples are sorted by length (ties broken at random per epoch), cut into batches whose padded
size stays within the budget, and the batches are shuffled; so batches hold examples of similar
length (little padding) and each epoch's order is a pure function of (seed, epoch), which is what
makes resuming at a batch exact.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from seq2seqkit.data.vocab import EOS_ID, PAD_ID, SOS_ID


@dataclass
class Batch:
    """A padded batch. Layout: batch first; masks are bool with True = real token.

    src: (batch, src_len) token ids, or (batch, src_len, features) floats such as audio frames;
    src_lengths: (batch,).
    tgt_in: (batch, tgt_len) <sos> y_1 .. y_n (decoder input, teacher forcing).
    tgt_out: (batch, tgt_len) y_1 .. y_n <eos> (what to predict), PAD_ID at padding.
    indices: (batch,) positions of the examples in their dataset.
    src_extended: (batch, src_len) for a copying model, the source tokens' ids in the target
    vocabulary extended by the source's unknown words; tgt_out then holds extended ids too.
    """

    src: torch.Tensor
    src_lengths: torch.Tensor
    tgt_in: torch.Tensor
    tgt_out: torch.Tensor
    indices: torch.Tensor
    src_extended: torch.Tensor | None = None

    def to(self, device: torch.device) -> Batch:
        """The batch on ``device``; to a GPU through pinned memory, copied while the CPU goes on."""
        if device.type == "cpu":
            return self
        pinned = device.type == "cuda"

        def move(tensor: torch.Tensor) -> torch.Tensor:
            return (tensor.pin_memory() if pinned else tensor).to(device, non_blocking=pinned)

        return Batch(
            src=move(self.src),
            src_lengths=move(self.src_lengths),
            tgt_in=move(self.tgt_in),
            tgt_out=move(self.tgt_out),
            indices=self.indices,
            src_extended=None if self.src_extended is None else move(self.src_extended),
        )

    @property
    def tgt_mask(self) -> torch.Tensor:
        return self.tgt_out != PAD_ID

    @property
    def num_tgt_tokens(self) -> int:
        """Target tokens that count in the loss (<eos> included, padding not)."""
        return int(self.tgt_mask.sum())


# One source as the model reads it: token ids, or a (frames, features) float tensor.
Features = Sequence[int] | torch.Tensor


def pad(sequences: Sequence[Sequence[int]], value: int = PAD_ID) -> torch.Tensor:
    """Right-pad lists of ids with ``value`` into a (batch, max_len) LongTensor."""
    out = torch.full((len(sequences), max(len(s) for s in sequences)), value, dtype=torch.long)
    for row, seq in enumerate(sequences):
        out[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    return out


def pad_sources(sources: Sequence[Features]) -> torch.Tensor:
    """Token ids padded as ``pad`` does, or (frames, features) tensors zero-padded into
    (batch, max_frames, features)."""
    if not isinstance(sources[0], torch.Tensor):
        return pad(sources)  # type: ignore[arg-type]
    return torch.nn.utils.rnn.pad_sequence(list(sources), batch_first=True)  # type: ignore[arg-type]


def collate(
    src: Sequence[Features],
    tgt: Sequence[Sequence[int]] | None,
    indices: Sequence[int],
    extended: tuple[Sequence[Sequence[int]], Sequence[Sequence[int]] | None] | None = None,
) -> Batch:
    """Pad one batch; without targets (generation) tgt_in / tgt_out hold only <sos> / <eos>.

    ``extended``: (source, target) ids over the extended vocabulary of a copying model (target
    None in generation); the decoder reads ``tgt`` (<unk> for unknown words), the loss the target's
    extended ids."""
    targets = tgt if tgt is not None else [[] for _ in src]
    outputs = extended[1] if extended is not None and extended[1] is not None else targets
    return Batch(
        src=pad_sources(src),
        src_lengths=torch.tensor([len(s) for s in src], dtype=torch.long),
        tgt_in=pad([[SOS_ID, *t] for t in targets]),
        tgt_out=pad([[*t, EOS_ID] for t in outputs]),
        indices=torch.tensor(list(indices), dtype=torch.long),
        src_extended=None if extended is None else pad(extended[0]),
    )


def token_batches(
    src_lengths: Sequence[int],
    tgt_lengths: Sequence[int],
    max_tokens: int,
    rng: random.Random | None = None,
) -> list[list[int]]:
    """Group example indices into batches of at most ``max_tokens`` padded tokens per side.

    A batch's size is its count times its longest sequence (+1 for <sos>/<eos>) on the longer
    side; an example longer than the budget gets a batch of its own. With ``rng`` the order of
    equal-length examples and of the batches is shuffled; without it, batches come sorted.
    """
    order = list(range(len(src_lengths)))
    if rng is not None:
        rng.shuffle(order)
    # by the longer side first, as batches are sized (speech: frames, not characters); stable:
    # keeps the shuffle in ties
    order.sort(key=lambda i: (max(src_lengths[i], tgt_lengths[i]), tgt_lengths[i], src_lengths[i]))
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        size = max(src_lengths[i], tgt_lengths[i]) + 1
        if current and max(longest, size) * (len(current) + 1) > max_tokens:
            batches.append(current)
            current, longest = [], 0
        current.append(i)
        longest = max(longest, size)
    if current:
        batches.append(current)
    if rng is not None:
        rng.shuffle(batches)
    return batches


class BatchSampler:
    """The training batches of each epoch, reproducible from (seed, epoch)."""

    def __init__(
        self, src_lengths: Sequence[int], tgt_lengths: Sequence[int], max_tokens: int, seed: int
    ) -> None:
        self.src_lengths = list(src_lengths)
        self.tgt_lengths = list(tgt_lengths)
        self.max_tokens = max_tokens
        self.seed = seed

    def epoch(self, epoch: int) -> list[list[int]]:
        return token_batches(
            self.src_lengths, self.tgt_lengths, self.max_tokens, random.Random(f"{self.seed}/{epoch}")
        )
