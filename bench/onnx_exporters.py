"""Which of torch's two ONNX exporters handles what: the default (``dynamo=True``, torch.export,
needs onnxscript) and the TorchScript-based one (``dynamo=False``) that ``seq2seqkit export`` uses.

    .venv/bin/pip install onnxscript && .venv/bin/python bench/onnx_exporters.py

Each exporter exports, from a batch of 2 sources of length 5, a bidirectional LSTM over packed
sequences and this package's encoder (each RNN over the padded batch, the backward direction
reading each source reversed within its length); each graph must then run in onnxruntime on a
batch of 3 sources of length 9. One line per case: OK, or the first line of the error.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import onnxruntime as ort
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seq2seqkit.build import build_model
from seq2seqkit.config import ModelConfig
from seq2seqkit.export.onnx import EncoderGraph
from seq2seqkit.model.seq2seq import Seq2Seq


class PackedEncoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(20, 8)
        self.rnn = nn.LSTM(8, 8, batch_first=True, bidirectional=True)

    def forward(self, src: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(self.embedding(src), lengths, batch_first=True, enforce_sorted=False)
        return pad_packed_sequence(self.rnn(packed)[0], batch_first=True)[0]


def attempt(name: str, module: nn.Module, dynamo: bool) -> str:
    src, lengths = torch.tensor([[4, 5, 6, 7, 8], [6, 4, 5, 0, 0]]), torch.tensor([5, 3])
    path = Path(tempfile.mkdtemp()) / "graph.onnx"
    shape = "not exported"
    try:
        if dynamo:
            batch, length = torch.export.Dim("batch"), torch.export.Dim("src_len")
            shapes = ({0: batch, 1: length}, {0: batch})
            torch.onnx.export(module, (src, lengths), str(path), dynamo=True, dynamic_shapes=shapes)
        else:
            axes = {"src": {0: "batch", 1: "src_len"}, "src_lengths": {0: "batch"}}
            names = ["src", "src_lengths"]
            torch.onnx.export(
                module, (src, lengths), str(path), dynamo=False, input_names=names, dynamic_axes=axes
            )
        session = ort.InferenceSession(str(path))
        shape = f"graph input src {session.get_inputs()[0].shape}"
        other = {"src": torch.randint(1, 8, (3, 9)).numpy(), "src_lengths": torch.tensor([9, 4, 7]).numpy()}
        session.run(None, dict(zip([i.name for i in session.get_inputs()], other.values(), strict=True)))
        return f"{name}, dynamo={dynamo}: OK ({shape})"
    except Exception as err:  # any failure is the finding
        cause = err.__cause__ or err  # torch.onnx wraps torch.export's own error
        first = next((line for line in str(cause).splitlines() if line.strip()), "")
        return f"{name}, dynamo={dynamo}: FAILS ({shape}; {type(cause).__name__}: {first[:150]})"


def main() -> None:
    warnings.simplefilter("ignore")
    print(f"torch {torch.__version__}, onnxruntime {ort.__version__}")
    config = ModelConfig(embedding_size=16, dropout=0.0)
    model = build_model(config, 20, 20).eval()
    assert isinstance(model, Seq2Seq)  # an encoder-decoder, not a pointer reader
    for dynamo in (False, True):
        print(attempt("packed bidirectional LSTM", PackedEncoder().eval(), dynamo))
        print(attempt("seq2seqkit encoder", EncoderGraph(model).eval(), dynamo))


if __name__ == "__main__":
    main()
