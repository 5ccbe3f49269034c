"""A pointer reader: a source of "question <sep> paragraph" in, the answer's boundaries out.

The answer to a reading-comprehension question is a span of its paragraph, so the output points at
source positions (Pointer Networks, Vinyals et al., 2015) instead of generating vocabulary
pieces: two distributions over the paragraph's positions, where the answer starts and where it
ends (the boundary model of Match-LSTM, Wang & Jiang, 2016), scored as DrQA does (Chen et al.,
2017):

    E            token embeddings, plus the field-match feature (a paragraph token whose id the
                 question holds; ``frontends.FieldMatchEmbedding``)
    f_align(p_i) = sum_j a_ij E(q_j),  a_ij = softmax_j(relu(W E(p_i)) . relu(W E(q_j)))
                 each paragraph token's aligned question embedding
    P = BiRNN([E(p); f_align(p)])       the paragraph, read knowing the question (modelling layer)
    Q = BiRNN(E(q)),  q = sum_j b_j Q_j,  b = softmax(w . Q_j)   the question, encoded on its own
    P_start(i) = softmax_i(P_i W_s q),  P_end(i) = softmax_i(P_i W_e q)

``forward`` returns them as a ``ModelOutput`` whose features are the boundary logits (batch, 2,
src_len) over source positions, -inf off the paragraph: the output kind "pointer", trained by
``training/loss.py``'s ``BoundaryLoss`` against the answer's (start, end) positions, decoded by
``decoding/span.py`` as the best span of whole words.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seq2seqkit.model.frontends import Frontend
from seq2seqkit.model.seq2seq import ModelOutput, Seq2Seq

NEG_INF = float("-inf")


def _birnn(rnn_type: str, input_size: int, hidden_size: int, num_layers: int, dropout: float) -> nn.RNNBase:
    cell = nn.LSTM if rnn_type == "lstm" else nn.GRU
    return cell(
        input_size, hidden_size, num_layers, batch_first=True, bidirectional=True,
        dropout=dropout if num_layers > 1 else 0.0,
    )  # fmt: skip


def _run(rnn: nn.RNNBase, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """inputs (batch, len, in) of ``lengths`` (batch,) >= 1 -> (batch, len, 2 * hidden), 0 at padding."""
    packed = pack_padded_sequence(inputs, lengths.cpu().clamp(min=1), batch_first=True, enforce_sorted=False)
    output, _ = rnn(packed)
    return pad_packed_sequence(output, batch_first=True, total_length=inputs.size(1))[0]


class PointerReader(nn.Module):
    """Question <sep> paragraph -> boundary logits over the paragraph's positions (see above)."""

    output_kind = "pointer"
    copy_gate = None  # a reader has no pointer-generator gate (callers of either network ask)

    def __init__(
        self,
        frontend: Frontend,
        separator_id: int,
        hidden_size: int,
        num_layers: int,
        rnn_type: str = "lstm",
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.frontend = frontend
        self.separator_id = separator_id
        size = frontend.output_size
        self.align = nn.Linear(size, size)
        self.paragraph_rnn = _birnn(rnn_type, 2 * size, hidden_size, num_layers, dropout)
        self.question_rnn = _birnn(rnn_type, size, hidden_size, 1, 0.0)
        self.question_pool = nn.Linear(2 * hidden_size, 1)
        self.start = nn.Linear(2 * hidden_size, 2 * hidden_size, bias=False)
        self.end = nn.Linear(2 * hidden_size, 2 * hidden_size, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        src: torch.Tensor,
        src_lengths: torch.Tensor,
        prev_tokens: torch.Tensor | None = None,
        teacher_forcing_ratio: float = 1.0,
    ) -> ModelOutput:
        """src (batch, src_len) ids of "question <sep> paragraph", src_lengths (batch,) ->
        ModelOutput(features=(batch, 2, src_len) float32 start and end logits, -inf off the
        paragraph). ``prev_tokens`` (the answer's positions) are not read: the contract's signature."""
        return ModelOutput(self.boundary_logits(src, src_lengths), attention=None)

    def boundary_logits(self, src: torch.Tensor, src_lengths: torch.Tensor) -> torch.Tensor:
        """(batch, 2, src_len) float32 start and end logits; -inf off the paragraph."""
        positions = torch.arange(src.size(1), device=src.device).unsqueeze(0)  # (1, S)
        is_separator = src == self.separator_id
        # the question precedes the first separator, the paragraph follows the last one
        first = torch.where(is_separator, positions, src.size(1)).min(dim=1, keepdim=True).values
        last = torch.where(is_separator, positions, -1).max(dim=1, keepdim=True).values
        question = positions < first
        paragraph = (positions > last) & (positions < src_lengths.unsqueeze(1)) & (last >= 0)
        embedded = self.dropout(self.frontend(src))  # (batch, S, E)
        inputs = torch.cat([embedded, self._aligned_question(embedded, question)], dim=-1)
        # the modelling RNN reads the paragraph moved to the front, packed to its length
        moved = (last + 1 + positions).clamp(max=src.size(1) - 1)  # column j <- position last + 1 + j
        shifted = inputs.gather(1, moved.unsqueeze(-1).expand(-1, -1, inputs.size(-1)))
        encoded = self.dropout(_run(self.paragraph_rnn, shifted, paragraph.sum(1)))  # (batch, S, 2H)
        q_vector = self._question_vector(embedded, question)  # (batch, 2H)
        scores = torch.stack(
            [torch.einsum("bsh,bh->bs", layer(encoded), q_vector) for layer in (self.start, self.end)], dim=1
        ).float()  # (batch, 2, S), column j = paragraph token j
        back = (positions - last - 1).clamp(min=0).expand(src.size(0), -1)  # position s <- its column
        logits = scores.gather(2, back.unsqueeze(1).expand(-1, 2, -1))
        return logits.masked_fill(~paragraph.unsqueeze(1), NEG_INF)

    def _aligned_question(self, embedded: torch.Tensor, question: torch.Tensor) -> torch.Tensor:
        """f_align: each position's attention over the question's embeddings (batch, S, E)."""
        projected = torch.relu(self.align(embedded))
        scores = torch.bmm(projected, projected.transpose(1, 2)).float()  # (batch, S, S)
        scores = scores.masked_fill(~question.unsqueeze(1), NEG_INF)
        weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)  # a source without a question: 0
        return torch.bmm(weights.to(embedded.dtype), embedded)

    def _question_vector(self, embedded: torch.Tensor, question: torch.Tensor) -> torch.Tensor:
        """q = sum_j b_j Q_j over the question encoded on its own (it is the source's prefix)."""
        encoded = _run(self.question_rnn, embedded, question.sum(1))
        scores = self.question_pool(encoded).squeeze(-1).float().masked_fill(~question, NEG_INF)
        weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)
        return torch.einsum("bs,bsh->bh", weights.to(encoded.dtype), encoded)


# the networks build.py makes: an encoder-decoder, or a reader
Network = Seq2Seq | PointerReader
