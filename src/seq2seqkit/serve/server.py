"""``seq2seqkit serve``: load the models once, then run the app under uvicorn until SIGTERM / Ctrl-C.

On SIGTERM uvicorn stops accepting connections and lets in-flight requests finish (within the
request timeout) before the batchers stop; /ready answers 503 from the signal on.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import uvicorn

import seq2seqkit
from seq2seqkit.errors import Seq2SeqError
from seq2seqkit.serve.app import ServeSettings, State, create_app


def model_dirs(specs: Sequence[str]) -> dict[str, Path]:
    """Names for the model directories: ``NAME=DIR`` as given, else the directory's name (its
    whole path where two names clash)."""
    given: list[str | None] = []
    paths = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        named = bool(sep and name) and not Path(spec).exists()
        given.append(name if named else None)
        paths.append(Path(path if named else spec))
    for short in (lambda path: path.name or str(path), str):
        names = [name or short(path) for name, path in zip(given, paths, strict=True)]
        if len(set(names)) == len(names):
            return dict(zip(names, paths, strict=True))
    raise Seq2SeqError("two models would share a name; name them: seq2seqkit serve NAME=DIR ...")


class _Server(uvicorn.Server):
    """uvicorn's server, telling the app when a shutdown signal arrives (so /ready turns 503)."""

    def __init__(self, config: uvicorn.Config, state: State) -> None:
        super().__init__(config)
        self.state = state

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.state.draining = True
        super().handle_exit(sig, frame)


def serve(specs: Sequence[str], host: str, port: int, settings: ServeSettings, device: str = "auto") -> None:
    """Load every model onto ``device`` (a damaged one stops here, before anything listens), then serve."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr, force=True)
    pipelines = {name: seq2seqkit.load(path, device=device) for name, path in model_dirs(specs).items()}
    app = create_app(pipelines, settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,  # our handler: request lines are JSON, from observe.RequestLog
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=int(settings.limits.timeout_s) + 5,
    )
    names = ", ".join(f"{name} ({p.config.task})" for name, p in pipelines.items())
    where = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    print(f"seq2seqkit: serving {names} at {where}/ (API docs: {where}/docs)", file=sys.stderr)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print("seq2seqkit: note: reachable from other machines, without authentication", file=sys.stderr)
    try:
        _Server(config, app.state.serve).run()
    except SystemExit:  # uvicorn exits when it cannot start, having said why (e.g. the port is taken)
        raise Seq2SeqError(f"could not serve on {where} (see the message above)") from None
