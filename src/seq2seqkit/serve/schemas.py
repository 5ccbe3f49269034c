"""The JSON the server reads and writes (pydantic): requests are checked strictly, field by field."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class GenerateRequest(BaseModel):
    """POST /v1/generate."""

    model_config = ConfigDict(extra="forbid", strict=True)

    inputs: list[str | dict[str, str]] = Field(
        min_length=1,
        description="texts to generate from; a model with several source fields (e.g. question "
        "and context) takes objects holding those fields",
        examples=[["hello", "world"]],
    )
    model: str | None = Field(None, description="a served model's name (default: the first)")
    beam: int | None = Field(None, ge=1, description="beam size (default: the model's; 1 = greedy)")
    nbest: int = Field(1, ge=1, description="outputs per input, best first (at most the beam size)")
    length_penalty: float | None = Field(None, ge=0.0, description="alpha (default: the model's)")
    attention: bool = Field(False, description="include each output's attention weights")


class TranscribeRequest(BaseModel):
    """POST /v1/transcribe: the query's parameters (the body is the audio file itself)."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, description="a served speech model's name (default: the first)")
    beam: int | None = Field(None, ge=1, description="beam size (default: the model's; 1 = greedy)")
    nbest: int = Field(1, ge=1, description="transcripts, best first (at most the beam size)")
    length_penalty: float | None = Field(None, ge=0.0, description="alpha (default: the model's)")
    attention: bool = False  # not asked for: speech outputs come without attention weights


class Hypothesis(BaseModel):
    text: str
    tokens: list[str]
    score: float | None = Field(description="total log-probability (null if not finite)")
    attention: list[list[float]] | None = Field(
        None,
        description="when asked: (len(tokens) + 1) rows (the last for </s>) of len(source_tokens) "
        "weights; null for an empty input or a model without attention",
    )
    copy_gate: list[float] | None = Field(
        None, description="when attention is asked and the model copies: p_gen per output step"
    )


class Output(BaseModel):
    source_tokens: list[str]
    hypotheses: list[Hypothesis]


class GenerateResponse(BaseModel):
    model: str
    outputs: list[Output]


class TranscribeResponse(BaseModel):
    model: str
    hypotheses: list[Hypothesis]


class ModelInfo(BaseModel):
    name: str
    task: str
    source: str = Field(description="text (POST /v1/generate) or audio (POST /v1/transcribe)")
    source_fields: list[str] = Field(description="empty: inputs are plain strings")
    source_vocab: int | None
    target_vocab: int
    attention: bool
    copies: bool = Field(description="a pointer-generator: copies source words")
    defaults: dict[str, float | int] = Field(description="decoding defaults: beam, length_penalty")
    model: dict[str, str | int | bool | float] = Field(description="a summary of the network")


class Limits(BaseModel):
    """What one request may ask for (``seq2seqkit serve --help`` names the flags)."""

    max_inputs: int = 64
    max_chars: int = 2000
    max_beam: int = 16
    max_body_bytes: int = 1_000_000
    timeout_s: float = 30.0


class ModelsResponse(BaseModel):
    models: list[ModelInfo]
    limits: Limits


class ErrorResponse(BaseModel):
    error: str = Field(description="one line saying what is wrong")
    field: str | None = Field(None, description="the request field at fault, e.g. inputs[2]")
