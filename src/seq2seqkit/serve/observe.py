"""What the server tells its operators: Prometheus metrics and one JSON log line per request."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

from seq2seqkit.serve.batching import BatchReport

log = logging.getLogger("seq2seqkit.serve")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOG_FIELDS = "seq2seqkit.log"  # scope key where a route leaves fields for its log line
ROUTES = {"/", "/health", "/ready", "/metrics", "/v1/models", "/v1/generate", "/docs", "/openapi.json"}
QUIET = {"/health", "/ready", "/metrics", "/static"}
SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    """The server's Prometheus metrics, in a registry of its own (one per app)."""

    def __init__(self) -> None:
        disable_created_metrics()  # no *_created series: timestamps of when each label first appeared
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "seq2seqkit_requests", "HTTP requests answered", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "seq2seqkit_request_seconds",
            "time from request to response",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.batch_inputs = Histogram(
            "seq2seqkit_batch_inputs",
            "inputs decoded per batch",
            ["model"],
            buckets=SIZES,
            registry=self.registry,
        )
        self.batch_requests = Histogram(
            "seq2seqkit_batch_requests",
            "requests per batch",
            ["model"],
            buckets=SIZES,
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "seq2seqkit_batch_seconds",
            "time to decode one batch",
            ["model"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.waiting = Gauge(
            "seq2seqkit_waiting_inputs", "inputs waiting to be batched", ["model"], registry=self.registry
        )

    def batch(self, model: str) -> Callable[[BatchReport], None]:
        """A batcher's callback recording its batches under ``model``."""

        def record(report: BatchReport) -> None:
            self.batch_inputs.labels(model).observe(report.inputs)
            self.batch_requests.labels(model).observe(report.requests)
            self.batch_seconds.labels(model).observe(report.seconds)

        return record


class RequestLog:
    """ASGI middleware: each HTTP request counted, timed and logged as one JSON line."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 499  # nginx's "client closed request", if no response starts

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        scope[LOG_FIELDS] = {}
        try:
            await self.app(scope, receive, send_status)
        except Exception:
            status = 500  # answered by Starlette's error middleware, outside this one
            raise
        finally:
            self._record(scope, status, start)

    def _record(self, scope: Scope, status: int, start: float) -> None:
        seconds = time.perf_counter() - start
        path = scope["path"]
        route = path if path in ROUTES or path.startswith("/static/") else "other"
        route = "/static" if route.startswith("/static/") else route
        self.metrics.requests.labels(route, str(status)).inc()
        self.metrics.latency.labels(route).observe(seconds)
        if route in QUIET and status == 200:
            return  # probes and scrapes every few seconds: counted, not logged
        client = scope.get("client")
        line = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "event": "request",
            "method": scope["method"],
            "path": path,
            "status": status,
            "ms": round(seconds * 1000, 1),
            "client": f"{client[0]}:{client[1]}" if client else None,
            **scope[LOG_FIELDS],
        }
        log.info(json.dumps(line, ensure_ascii=False))
