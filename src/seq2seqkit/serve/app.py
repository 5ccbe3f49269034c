"""The HTTP API and page (FastAPI) over loaded Pipelines: routes, request checking, errors.

Every answer to a bad request is a 4xx whose JSON body is one line naming the field at fault;
an unexpected failure is a 500 saying only that (the traceback goes to the server's log).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from seq2seqkit.pipeline import Output, Pipeline
from seq2seqkit.serve.batching import Batcher, Decoding
from seq2seqkit.serve.models import RequestError, ServedModel, outputs_json
from seq2seqkit.serve.observe import LOG_FIELDS, Metrics, RequestLog
from seq2seqkit.serve.schemas import (
    ErrorResponse,
    GenerateRequest,
    GenerateResponse,
    Limits,
    ModelsResponse,
    TranscribeRequest,
    TranscribeResponse,
)

log = logging.getLogger("seq2seqkit.serve")
STATIC = Path(__file__).parent / "static"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}
ERRORS: dict[int | str, dict] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in [
        (400, "the body is not UTF-8 JSON (/v1/generate)"),
        (404, "no model by that name"),
        (413, "the body is over --max-body-bytes"),
        (422, "a field is missing, of the wrong type or over a limit"),
        (503, "too many inputs waiting, or shutting down"),
        (504, "not decoded within --timeout"),
    ]
}

# POST /v1/transcribe's query parameters and binary body, for the OpenAPI page
TRANSCRIBE_OPENAPI = {
    "parameters": [
        {"name": name, "in": "query", "required": False, "schema": schema}
        for name, schema in TranscribeRequest.model_json_schema()["properties"].items()
        if name != "attention"
    ],
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
}


@dataclass(frozen=True)
class ServeSettings:
    """How the server batches and what it allows (``seq2seqkit serve --help`` names the flags)."""

    limits: Limits = field(default_factory=Limits)
    batching: bool = True
    batch_wait_ms: float = 5.0
    batch_tokens: int | None = None  # None: each model's decoding.batch_tokens
    max_waiting: int = 4096  # inputs waiting per model before requests are turned away (503)


class State:
    """What the routes share: the served models, settings, metrics, and whether we are draining."""

    def __init__(self, pipelines: dict[str, Pipeline], settings: ServeSettings) -> None:
        if not pipelines:
            raise ValueError("nothing to serve")
        self.settings = settings
        self.metrics = Metrics()
        self.draining = False
        self.models = {
            name: ServedModel(
                name,
                pipeline,
                Batcher(
                    pipeline,
                    max_wait=settings.batch_wait_ms / 1000,
                    max_tokens=settings.batch_tokens or pipeline.config.decoding.batch_tokens,
                    enabled=settings.batching,
                    on_batch=self.metrics.batch(name),
                ),
            )
            for name, pipeline in pipelines.items()
        }
        for name, served in self.models.items():
            self.metrics.waiting.labels(name).set_function(_waiting(served.batcher))

    def model(self, name: str | None) -> ServedModel:
        if name is None:
            return next(iter(self.models.values()))
        if name not in self.models:
            served = ", ".join(self.models)
            raise RequestError(404, f"no model named {name!r} (serving: {served})", "model")
        return self.models[name]


def _waiting(batcher: Batcher) -> Callable[[], float]:
    return lambda: batcher.waiting_inputs


def create_app(pipelines: dict[str, Pipeline], settings: ServeSettings | None = None) -> FastAPI:
    """The app serving ``pipelines`` by name (the first is the default model)."""
    state = State(pipelines, settings or ServeSettings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for served in state.models.values():
            served.batcher.start()
        yield
        for served in state.models.values():
            await served.batcher.stop()

    app = FastAPI(
        title="seq2seqkit",
        summary="Generate with RNN encoder-decoder models; the page at / shows outputs and attention.",
        lifespan=lifespan,
        docs_url=None,  # served below from swagger-ui's files in a package: FastAPI's /docs loads a CDN
        redoc_url=None,
    )
    app.state.serve = state
    _add_error_handlers(app)
    _add_routes(app, state)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _add_api_docs(app)
    app.add_middleware(RequestLog, metrics=state.metrics)
    return app


def _add_api_docs(app: FastAPI) -> None:
    """The OpenAPI page at /docs with Swagger UI 5's files from the fastapi-offline package
    (FastAPI's own /docs loads them from a CDN), so that it works offline like the page at /."""
    import fastapi_offline
    from fastapi.openapi.docs import get_swagger_ui_html

    assets = Path(fastapi_offline.__file__).parent / "static"
    app.mount("/docs-assets", StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def api_docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="seq2seqkit API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon.png",
        )


def _add_routes(app: FastAPI, state: State) -> None:
    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=SECURITY_HEADERS)

    @app.get("/health", summary="liveness: the process answers")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", summary="readiness: models loaded and batching", responses={503: ERRORS[503]})
    async def ready() -> JSONResponse:
        if state.draining:
            return _error(503, "shutting down")
        stopped = [name for name, served in state.models.items() if not served.batcher.running]
        if stopped:
            return _error(503, f"not ready: {', '.join(stopped)}")
        return JSONResponse({"status": "ready", "models": list(state.models)})

    @app.get("/v1/models", summary="the served models and the request limits")
    async def models() -> ModelsResponse:
        return ModelsResponse(
            models=[served.info() for served in state.models.values()], limits=state.settings.limits
        )

    @app.get("/metrics", summary="Prometheus metrics (text format)", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post(
        "/v1/generate",
        summary="n-best outputs for one or many inputs, with attention when asked",
        response_model=GenerateResponse,
        responses=ERRORS,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": GenerateRequest.model_json_schema()}},
            }
        },
    )
    async def generate(request: Request) -> Response:
        return await _generate(request, state)

    @app.post(
        "/v1/transcribe",
        summary="the n-best transcripts of one audio file (WAV, FLAC, OGG) by a speech model",
        response_model=TranscribeResponse,
        responses=ERRORS,
        openapi_extra=TRANSCRIBE_OPENAPI,
    )
    async def transcribe(request: Request) -> Response:
        return await _transcribe(request, state)


async def _generate(request: Request, state: State) -> Response:
    limits = state.settings.limits
    body = await _read_request(request, limits.max_body_bytes)
    served = state.model(body.model)
    texts = served.texts(body.inputs, limits)
    decoding = served.decoding(body, limits)
    outputs = await _decode(request, state, served, texts, decoding, served.tokens(texts))
    if outputs is None:
        return Response(status_code=499)  # nobody is listening; the log says so
    return JSONResponse({"model": served.name, "outputs": outputs_json(outputs, body.attention)})


async def _transcribe(request: Request, state: State) -> Response:
    limits = state.settings.limits
    try:
        params = TranscribeRequest.model_validate(dict(request.query_params))
    except ValidationError as err:
        raise _field_error(err) from None
    served = state.model(params.model)
    waveform = served.audio(bytes(await _read_body(request, limits.max_body_bytes)))
    decoding = served.decoding(params, limits)
    outputs = await _decode(request, state, served, [waveform], decoding, served.frames(waveform))
    if outputs is None:
        return Response(status_code=499)
    return JSONResponse({"model": served.name, "hypotheses": outputs_json(outputs, False)[0]["hypotheses"]})


async def _decode(
    request: Request, state: State, served: ServedModel, inputs: list, decoding: Decoding, tokens: int
) -> list[Output] | None:
    """The outputs of ``inputs`` through the model's batcher; None if the client went away."""
    request.scope[LOG_FIELDS].update(model=served.name, inputs=len(inputs), beam=decoding.beam)
    if state.draining:
        raise RequestError(503, "shutting down")
    if served.batcher.waiting_inputs + len(inputs) > state.settings.max_waiting:
        raise RequestError(503, f"busy: {served.batcher.waiting_inputs} inputs waiting; retry shortly")
    job = served.batcher.submit(inputs, decoding, tokens)
    return await _unless_gone(request, job, state.settings.limits.timeout_s)


async def _unless_gone(
    request: Request, job: Coroutine[Any, Any, list[Output]], timeout: float
) -> list[Output] | None:
    """The job's outputs; None if the client disconnects first (the job is dropped if it has not
    started); a 504 after ``timeout`` seconds."""
    work = asyncio.ensure_future(job)
    gone = asyncio.ensure_future(_disconnected(request))
    done, _ = await asyncio.wait({work, gone}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    gone.cancel()
    if work in done:
        return work.result()
    work.cancel()
    if gone in done:
        return None
    raise RequestError(504, f"not decoded within {timeout:g} s (the server's --timeout)")


async def _disconnected(request: Request) -> None:
    """Returns when the client goes away (the body has been read: the next message is the end)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _read_body(request: Request, limit: int) -> bytearray:
    """The body, or a 413 as soon as it is over ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"request body of {declared} bytes, at most {limit}", "body")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise RequestError(413, f"request body over {limit} bytes", "body")
    return body


async def _read_request(request: Request, limit: int) -> GenerateRequest:
    """The body as a GenerateRequest, or a RequestError naming what is wrong with it."""
    body = await _read_body(request, limit)
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise RequestError(400, f"request body is not UTF-8 (byte {err.start})", "body") from None
    except json.JSONDecodeError as err:
        where = f"{err.msg} at line {err.lineno} column {err.colno}"
        raise RequestError(400, f"request body is not JSON: {where}", "body") from None
    except ValueError:  # Python's limit on the digits of an integer
        raise RequestError(
            400, "request body is not JSON we read: a number with too many digits", "body"
        ) from None
    except RecursionError:
        raise RequestError(400, "request body is nested too deeply", "body") from None
    try:
        return GenerateRequest.model_validate(data)
    except ValidationError as err:
        raise _field_error(err) from None


UNION_TAGS = {"str", "dict[str,str]"}  # pydantic names the member of inputs' union in its locations


def _field_error(err: ValidationError) -> RequestError:
    """The most specific of pydantic's errors as one line: ``inputs[2]: Input should be ...``."""
    first = max(err.errors(), key=lambda e: len(e["loc"]))
    if first["type"] == "model_type":
        return RequestError(422, "request body must be a JSON object", "body")
    where = ""
    for part in first["loc"]:
        if isinstance(part, int):
            where += f"[{part}]"
        elif part not in UNION_TAGS:
            where += f".{part}" if where else str(part)
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        fields = (
            TranscribeRequest.model_fields
            if err.title == "TranscribeRequest"
            else GenerateRequest.model_fields
        )
        message = f"unknown field (fields: {', '.join(name for name in fields if name != 'attention')})"
    elif first["type"] == "missing":
        message = "required"
    return RequestError(422, f"{where}: {message}", where)


def _error(status: int, message: str, field: str | None = None, headers: dict | None = None) -> JSONResponse:
    body = {"error": message} if field is None else {"error": message, "field": field}
    return JSONResponse(body, status_code=status, headers=headers)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestError)
    async def request_error(request: Request, err: RequestError) -> JSONResponse:
        request.scope[LOG_FIELDS]["error"] = err.message
        headers = {"Retry-After": "1"} if err.status == 503 else None
        return _error(err.status, err.message, err.field, headers)

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, err: ClientDisconnect) -> Response:
        return Response(status_code=499)  # gone while sending its body: nobody reads this

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException) -> JSONResponse:
        return _error(err.status_code, str(err.detail), headers=getattr(err, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return _error(422, f"{where}: {first['msg']}", where)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, err: Exception) -> JSONResponse:
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=err)
        return _error(500, "internal server error (see the server's log)")
