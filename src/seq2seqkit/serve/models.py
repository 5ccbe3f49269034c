"""A served model: its Pipeline and batcher, request checking against its limits, and its JSON."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from seq2seqkit import extras
from seq2seqkit.data.audio import Waveform
from seq2seqkit.data.vocab import join_fields
from seq2seqkit.pipeline import Output, Pipeline
from seq2seqkit.serve.batching import Batcher, Decoding
from seq2seqkit.serve.schemas import GenerateRequest, Limits, ModelInfo, TranscribeRequest

if TYPE_CHECKING:
    import torch


class RequestError(Exception):
    """A request the server will not serve: an HTTP status, one line, and the field at fault."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


@dataclass
class ServedModel:
    name: str
    pipeline: Pipeline
    batcher: Batcher

    @property
    def fields(self) -> tuple[str, ...]:
        return self.pipeline.config.data.src_fields

    @property
    def reads_audio(self) -> bool:
        return self.pipeline.config.data.source == "audio"

    def texts(self, inputs: list[str | dict[str, str]], limits: Limits) -> list[str]:
        """The source text of each input (fields joined), within the character limit."""
        if self.reads_audio:  # never a path: the server does not read its own files for anyone
            raise RequestError(
                422,
                f"model {self.name!r} reads audio: POST the audio file's bytes to /v1/transcribe",
                "inputs",
            )
        if len(inputs) > limits.max_inputs:
            raise RequestError(
                422, f"{len(inputs)} inputs, at most {limits.max_inputs} per request", "inputs"
            )
        return [self._text(value, f"inputs[{i}]", limits) for i, value in enumerate(inputs)]

    def _text(self, value: str | dict[str, str], where: str, limits: Limits) -> str:
        if isinstance(value, dict):
            if not self.fields:
                raise RequestError(422, f"model {self.name!r} takes plain strings, not objects", where)
            missing = [name for name in self.fields if name not in value]
            extra = sorted(set(value) - set(self.fields))
            if missing or extra:
                problem = f"missing {missing[0]!r}" if missing else f"unknown field {extra[0]!r}"
                wanted = ", ".join(map(repr, self.fields))
                raise RequestError(422, f"{problem} (model {self.name!r} reads {wanted})", where)
            text = join_fields([value[name] for name in self.fields])
        elif self.fields:
            wanted = ", ".join(map(repr, self.fields))
            raise RequestError(422, f"model {self.name!r} takes objects with the fields {wanted}", where)
        else:
            text = value
        if len(text) > limits.max_chars:
            raise RequestError(422, f"{len(text)} characters, at most {limits.max_chars}", where)
        return text

    def audio(self, body: bytes) -> Waveform:
        """The first channel of the audio file in ``body`` (WAV, FLAC, OGG; any sample rate)."""
        if not self.reads_audio:
            raise RequestError(422, f"model {self.name!r} reads text: POST JSON to /v1/generate", "model")
        soundfile = extras.load("speech", "soundfile")
        try:
            samples, rate = soundfile.read(io.BytesIO(body), dtype="float32", always_2d=True)
        except (RuntimeError, OSError, TypeError, ValueError) as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            reason = reason.split(">: ", 1)[-1]  # without libsndfile's "Error opening <_io.BytesIO ...>: "
            raise RequestError(422, f"request body is not a readable audio file ({reason})", "body") from None
        if not len(samples) or not np.isfinite(samples).all():
            raise RequestError(422, "request body holds no audio samples, or non-finite ones", "body")
        return Waveform(samples[:, 0], rate)

    def frames(self, waveform: Waveform) -> int:
        """The feature frames of ``waveform`` (cut at decoding.max_input_len): the batch budget."""
        shift = self.pipeline.config.data.audio.frame_shift_ms / 1000
        frames = int(len(waveform.samples) / waveform.sample_rate / shift)
        return min(frames, self.pipeline.config.decoding.max_input_len)

    def decoding(self, request: GenerateRequest | TranscribeRequest, limits: Limits) -> Decoding:
        beam = request.beam or self.pipeline.config.decoding.beam_size
        if request.beam is not None and beam > limits.max_beam:
            raise RequestError(422, f"beam {beam} is over this server's limit of {limits.max_beam}", "beam")
        if request.nbest > beam:
            raise RequestError(422, f"nbest ({request.nbest}) cannot exceed the beam size ({beam})", "nbest")
        copy_gates = request.attention and self.pipeline.model.copy_gate is not None
        return Decoding(beam, request.nbest, request.length_penalty, copy_gates)

    def tokens(self, texts: list[str]) -> int:
        """Source tokens of ``texts`` as decoded (cut at decoding.max_input_len): the batch budget."""
        limit = self.pipeline.config.decoding.max_input_len
        return sum(min(len(self.pipeline.source.encode(text).features), limit) for text in texts)

    def _family(self) -> dict[str, str | int]:
        """The architecture's own description: an RNN's type, layers and attention, or a
        Transformer's layers and sizes."""
        model = self.pipeline.config.model
        encoder, decoder, t = model.encoder, model.decoder, model.transformer
        if model.architecture == "transformer":
            return {
                "architecture": "transformer",
                "encoder": f"{t.encoder_layers} layers",
                "decoder": f"{t.decoder_layers} layers",
                "d_model": t.d_model,
                "heads": t.heads,
            }
        if decoder.output == "pointer":
            return {
                "architecture": "pointer reader",
                "rnn_type": model.rnn_type,
                "paragraph": f"{encoder.num_layers}x{encoder.hidden_size} bidirectional",
            }
        return {
            "architecture": "rnn",
            "rnn_type": model.rnn_type,
            "encoder": f"{encoder.num_layers}x{encoder.hidden_size}"
            + (" bidirectional" if encoder.bidirectional else ""),
            "decoder": f"{decoder.num_layers}x{decoder.hidden_size}",
            "context": decoder.context,
            "attention": decoder.attention if decoder.context == "attention" else "none",
        }

    def info(self) -> ModelInfo:
        config = self.pipeline.config
        decoder = config.model.decoder
        source_vocab = self.pipeline.source.vocab
        return ModelInfo(
            name=self.name,
            task=config.task,
            source=config.data.source,
            source_fields=list(self.fields),
            source_vocab=None if source_vocab is None else len(source_vocab),
            target_vocab=len(self.pipeline.target.vocab),
            attention=decoder.context == "attention" and decoder.output == "vocabulary",
            copies=decoder.copy,
            defaults={"beam": config.decoding.beam_size, "length_penalty": config.decoding.length_penalty},
            model={
                **self._family(),
                "parameters": sum(p.numel() for p in self.pipeline.model.parameters()),
                "source_tokenizer": config.data.src_tokenizer.type,
                "target_tokenizer": config.data.tgt_tokenizer.type,
            },
        )


def outputs_json(outputs: list[Output], attention: bool) -> list[dict]:
    """The response's outputs; attention rounded to 4 decimals (plenty for a picture, a third the bytes)."""
    return [
        {
            "source_tokens": output.source_tokens,
            "hypotheses": [
                {
                    "text": hyp.text,
                    "tokens": hyp.tokens,
                    "score": hyp.score if math.isfinite(hyp.score) else None,  # JSON has no infinities
                    **(
                        {
                            "attention": _rounded(hyp.attention),
                            "copy_gate": None if hyp.copy_gate is None else _rounded(hyp.copy_gate),
                        }
                        if attention
                        else {}
                    ),
                }
                for hyp in output.hypotheses
            ],
        }
        for output in outputs
    ]


def _rounded(values: torch.Tensor | None) -> list | None:
    if values is None or values.numel() == 0:
        return None
    return _round_nested(values.tolist())


def _round_nested(values: list) -> list:
    return [_round_nested(v) if isinstance(v, list) else round(v, 4) for v in values]
