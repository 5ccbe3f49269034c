"""Encoder frontends: what turns a padded source batch into the vectors the encoder RNN reads.

A frontend maps ``src`` (batch, src_len, ...) to (batch, time, output_size) and says how source
lengths map to output lengths (a subsampler for audio frames shortens them; an embedding does
not). The encoder holds its frontend as ``embedding``, as ESPnet holds its subsampler as
``encoder.embed``, so a text model's weights keep their names.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn


class Frontend(Protocol):
    @property
    def output_size(self) -> int: ...

    def __call__(self, src: torch.Tensor) -> torch.Tensor: ...
    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor: ...


class TokenEmbedding(nn.Embedding):
    """Token ids (batch, src_len) -> embeddings (batch, src_len, embedding_size); <pad> embeds to 0."""

    def __init__(self, vocab_size: int, embedding_size: int, pad_id: int) -> None:
        super().__init__(vocab_size, embedding_size, padding_idx=pad_id)

    @property
    def output_size(self) -> int:
        return self.embedding_dim

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return lengths


class FieldMatchEmbedding(TokenEmbedding):
    """Token embeddings plus, for a source of several fields joined by a separator token (a
    question <sep> its paragraph), a learned vector per position saying what the token is: part of
    the first fields, a token of the last field that the first fields also hold, or one they do
    not. This is DrQA's exact-match feature (Chen et al., 2017): the answer to a question lies
    near the paragraph's repeats of the question's words, and an RNN reading the paragraph would
    otherwise have to carry the question across the whole of it to find them.

    Matches compare ``keys[id]``: by default the token ids themselves, or ids that put tokens of
    the same normalised text together (``build.match_keys``); the ``common`` most frequent keys
    (the vocabulary's first ids: "the", "of", commas) never count, as they match everywhere and
    locate nothing."""

    keys: torch.Tensor

    def __init__(
        self,
        vocab_size: int,
        embedding_size: int,
        pad_id: int,
        separator_id: int,
        common: int,
        keys: list[int] | None = None,
    ) -> None:
        super().__init__(vocab_size, embedding_size, pad_id)
        self.separator_id = separator_id
        self.common = common
        self.field = nn.Embedding(3, embedding_size)  # 0: first fields, 1: last field, 2: it matches
        # derived from the vocabulary at build time, so not saved with the weights
        keys_tensor = torch.tensor(keys) if keys is not None else torch.arange(vocab_size)
        self.register_buffer("keys", keys_tensor, persistent=False)

    def forward(self, src: torch.Tensor) -> torch.Tensor:
        return super().forward(src) + self.field(self.field_features(src))

    def field_features(self, src: torch.Tensor) -> torch.Tensor:
        """(batch, src_len) ids -> (batch, src_len) feature ids: 0 up to a source's last separator
        (and at padding), 1 for a token after it, 2 for one whose key also occurs before it."""
        separators = (src == self.separator_id).long().cumsum(1)
        in_last = (separators == separators[:, -1:]) & (separators > 0)
        in_last = in_last & (src != self.separator_id) & (src != self.padding_idx)  # not &=: ONNX
        before = ~in_last & (separators < separators[:, -1:])
        keys = self.keys[src]
        # (batch, src_len, src_len): does token t's key occur at a position s of the first fields
        matches = ((keys[:, :, None] == keys[:, None, :]) & before[:, None, :]).any(-1)
        matches = matches & in_last & (keys >= self.common)
        return in_last.long() + matches.long()


class FrameStacking(nn.Module):
    """Audio frames (batch, frames, bins) -> (batch, ceil(frames / k), k * bins): each k consecutive
    frames side by side, a k times lower frame rate for the encoder (Sak et al., 2015; Pundak and
    Sainath, 2016); the last group is padded with zeros. No weights: the encoder's first layer
    reads the stacked frames. SpecAugment masks the input in training."""

    def __init__(self, bins: int, k: int, spec_augment: SpecAugment | None = None) -> None:
        super().__init__()
        self.k = k
        self.spec_augment = spec_augment
        self._output_size = bins * k

    @property
    def output_size(self) -> int:
        return self._output_size

    def forward(self, src: torch.Tensor) -> torch.Tensor:
        if self.training and self.spec_augment is not None:
            src = self.spec_augment(src)
        batch, frames, bins = src.shape
        src = nn.functional.pad(src, (0, 0, 0, -frames % self.k))
        return src.reshape(batch, -1, self.k * bins)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return (lengths + self.k - 1) // self.k


class Conv2dSubsampling(nn.Module):
    """Audio frames (batch, frames, bins) -> (batch, ~frames / 4, output_size): two 3x3
    convolutions of stride 2 with ReLU over (time, frequency), then a linear map of each time
    step's channels x bins (ESPnet's Conv2dSubsampling). SpecAugment masks the input in training."""

    def __init__(self, bins: int, channels: int, output_size: int, spec_augment: SpecAugment | None = None):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, channels, 3, 2), nn.ReLU(), nn.Conv2d(channels, channels, 3, 2), nn.ReLU()
        )
        self.linear = nn.Linear(channels * (((bins - 1) // 2 - 1) // 2), output_size)
        self.spec_augment = spec_augment
        self._output_size = output_size

    @property
    def output_size(self) -> int:
        return self._output_size

    def forward(self, src: torch.Tensor) -> torch.Tensor:
        if self.training and self.spec_augment is not None:
            src = self.spec_augment(src)
        x = self.conv(src.unsqueeze(1))  # (batch, channels, time', bins')
        return self.linear(x.transpose(1, 2).flatten(2))

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return (((lengths - 1) // 2 - 1) // 2).clamp(min=1)


class SpecAugment(nn.Module):
    """Frequency and time masks (Park et al., 2019) set to 0, the normalised features' mean.

    Each utterance gets its own masks: widths up to ``freq_width`` bins and up to ``time_width``
    frames (and ``max_time_ratio`` of the batch's length), at random places. Time masks are placed
    within the batch's longest utterance; batches hold utterances of similar length (length
    bucketing), so they fall on speech, not padding. Draws from torch's seeded generator."""

    def __init__(
        self, freq_masks: int, freq_width: int, time_masks: int, time_width: int, max_time_ratio: float
    ) -> None:
        super().__init__()
        self.freq = (freq_masks, freq_width)
        self.time = (time_masks, time_width, max_time_ratio)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        batch, time, bins = frames.shape
        keep = torch.ones(batch, time, bins, dtype=torch.bool, device=frames.device)
        for _ in range(self.freq[0]):
            keep &= _band(batch, bins, min(self.freq[1], bins), frames.device)[:, None, :]
        width = min(self.time[1], int(self.time[2] * time))
        for _ in range(self.time[0] if width > 0 else 0):
            keep &= _band(batch, time, width, frames.device)[:, :, None]
        return frames * keep.to(frames.dtype)


def _band(batch: int, size: int, max_width: int, device: torch.device) -> torch.Tensor:
    """(batch, size) bool: False on one band of 0..max_width positions per row, True elsewhere."""
    width = torch.randint(0, max_width + 1, (batch, 1))
    start = (torch.rand(batch, 1) * (size - width + 1)).long()
    positions = torch.arange(size)[None, :]
    return ((positions < start) | (positions >= start + width)).to(device)
