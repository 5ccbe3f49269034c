"""The HTTP server: the API gives what the Pipeline gives, every bad request is a one-line 4xx
naming its field, and faults (timeouts, disconnects, SIGTERM, a failing model) leave it serving."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

import seq2seqkit
from conftest import reverse_config  # this folder's
from seq2seqkit.serve.app import ServeSettings, create_app
from seq2seqkit.serve.schemas import Limits
from seq2seqkit.tasks import task_config

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

LIMITS = Limits(max_inputs=4, max_chars=50, max_beam=6, max_body_bytes=2000, timeout_s=10)


@pytest.fixture(scope="module")
def pipeline(reverse_model: Path) -> seq2seqkit.Pipeline:
    return seq2seqkit.load(reverse_model)


def client_for(pipelines: dict, **settings: object) -> TestClient:
    with warnings.catch_warnings():  # Starlette asks for httpx2 over httpx; both work
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    app = create_app(pipelines, ServeSettings(**{"limits": LIMITS, **settings}))  # type: ignore[arg-type]
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client(pipeline: seq2seqkit.Pipeline, fields_model: Path) -> Iterator[TestClient]:
    with client_for({"reverse": pipeline, "qa": seq2seqkit.load(fields_model)}) as client:
        yield client


def test_generate_gives_what_the_pipeline_gives(client: TestClient, pipeline: seq2seqkit.Pipeline) -> None:
    inputs = ["abc", "", "hgfedcba", "xyz"]
    response = client.post("/v1/generate", json={"inputs": inputs, "beam": 3, "nbest": 2, "attention": True})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "reverse"
    expected = pipeline.generate(inputs, beam=3, nbest=2)
    for got, want in zip(body["outputs"], expected, strict=True):
        assert got["source_tokens"] == want.source_tokens
        assert [h["text"] for h in got["hypotheses"]] == [h.text for h in want.hypotheses]
        assert [h["score"] for h in got["hypotheses"]] == pytest.approx([h.score for h in want.hypotheses])
        for hyp in got["hypotheses"]:  # attention for every output, one row per token and </s>
            if not got["source_tokens"]:
                assert hyp["attention"] is None
                continue
            assert len(hyp["attention"]) == len(hyp["tokens"]) + 1
            assert all(len(row) == len(got["source_tokens"]) for row in hyp["attention"])
            assert all(sum(row) == pytest.approx(1.0, abs=1e-3) for row in hyp["attention"])
    assert len(body["outputs"][2]["hypotheses"]) == 2


def test_attention_only_when_asked(client: TestClient) -> None:
    hyp = client.post("/v1/generate", json={"inputs": ["abc"]}).json()["outputs"][0]["hypotheses"][0]
    assert "attention" not in hyp and set(hyp) == {"text", "tokens", "score"}


def test_a_model_with_source_fields_takes_objects(client: TestClient) -> None:
    inputs = [{"question": "q 1", "context": "c 1 d"}]
    response = client.post("/v1/generate", json={"model": "qa", "inputs": inputs, "attention": True})
    assert response.status_code == 200, response.text
    output = response.json()["outputs"][0]
    assert output["source_tokens"] == ["q", "1", "<sep>", "c", "1", "d"]
    wrong = client.post("/v1/generate", json={"model": "qa", "inputs": [{"question": "q"}]})
    assert wrong.status_code == 422 and wrong.json()["field"] == "inputs[0]"
    assert "missing 'context'" in wrong.json()["error"]
    plain = client.post("/v1/generate", json={"model": "qa", "inputs": ["q 1"]})
    assert plain.status_code == 422 and "objects with the fields" in plain.json()["error"]


def test_models_health_ready_page(client: TestClient) -> None:
    models = client.get("/v1/models").json()
    assert [m["name"] for m in models["models"]] == ["reverse", "qa"]
    reverse = models["models"][0]
    assert reverse["task"] == "reverse" and reverse["attention"] and reverse["defaults"]["beam"] == 3
    assert models["models"][1]["source_fields"] == ["question", "context"]
    assert models["limits"]["max_inputs"] == 4
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {"status": "ready", "models": ["reverse", "qa"]}
    page = client.get("/")
    assert page.status_code == 200 and "<title>seq2seqkit</title>" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]  # nothing from elsewhere
    assert client.get("/static/app.js").status_code == 200
    assert "/v1/generate" in client.get("/openapi.json").json()["paths"]


def test_api_docs_load_nothing_from_elsewhere(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text
    assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", docs.text)
    assert assets and all(url.startswith("/docs-assets/") for url in assets), assets
    for url in assets:
        assert client.get(url).status_code == 200, url


def test_metrics_in_prometheus_text_format(client: TestClient) -> None:
    client.post("/v1/generate", json={"inputs": ["ab", "cd"]})
    client.post("/v1/generate", json={"inputs": "ab"})
    text = client.get("/metrics").text
    assert 'seq2seqkit_requests_total{route="/v1/generate",status="200"}' in text
    assert 'seq2seqkit_requests_total{route="/v1/generate",status="422"}' in text
    assert 'seq2seqkit_batch_inputs_bucket{le="2.0",model="reverse"}' in text
    assert (
        "seq2seqkit_request_seconds_bucket" in text
        and 'seq2seqkit_waiting_inputs{model="reverse"} 0.0' in text
    )


BAD_REQUESTS = [
    (b'{"inputs": ["abc"', 400, "body", "not JSON"),
    (b'{"inputs": ["\xff\xfe"]}', 400, "body", "not UTF-8"),
    (b"[1, 2]", 422, "body", "JSON object"),
    (b'{"inputs": "abc"}', 422, "inputs", "valid list"),
    (b'{"inputs": []}', 422, "inputs", "at least 1"),
    (b'{"inputs": [5]}', 422, "inputs[0]", "valid string"),
    (b'{"inputs": ["a"], "beam": "5"}', 422, "beam", "valid integer"),
    (b'{"inputs": ["a"], "beam": 2.5}', 422, "beam", "valid integer"),
    (b'{"inputs": ["a"], "nbest": 0}', 422, "nbest", "greater than or equal to 1"),
    (b'{"inputs": ["a"], "attention": "yes"}', 422, "attention", "valid boolean"),
    (b'{"inputs": ["a"], "length_penalty": -1}', 422, "length_penalty", "greater than or equal to 0"),
    (b'{"inputs": ["a"], "beem": 3}', 422, "beem", "unknown field"),
    (b'{"beam": 3}', 422, "inputs", "required"),
    (b'{"inputs": ["a", "b", "c", "d", "e"]}', 422, "inputs", "at most 4"),
    (b'{"inputs": ["a", "' + b"x" * 51 + b'"]}', 422, "inputs[1]", "at most 50"),
    (b'{"inputs": ["a"], "beam": 7}', 422, "beam", "limit of 6"),
    (b'{"inputs": ["a"], "beam": 2, "nbest": 3}', 422, "nbest", "cannot exceed"),
    (b'{"inputs": [{"question": "a"}]}', 422, "inputs[0]", "plain strings"),
    (b'{"inputs": ["a"], "model": "nope"}', 404, "model", "no model named 'nope' (serving: reverse, qa)"),
    (b'{"inputs": ["' + b"a" * 2100 + b'"]}', 413, "body", "at most 2000"),
    (b'{"inputs": [' + b"[" * 5000 + b"]" * 5000 + b"]}", 413, "body", "at most 2000"),
]


@pytest.mark.parametrize(("body", "status", "field", "words"), BAD_REQUESTS)
def test_bad_requests_get_a_one_line_4xx_naming_the_field(
    client: TestClient, body: bytes, status: int, field: str, words: str
) -> None:
    response = client.post("/v1/generate", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    error = response.json()
    assert error["field"] == field
    assert words in error["error"] and "\n" not in error["error"] and "Traceback" not in response.text
    assert client.post("/v1/generate", json={"inputs": ["abc"]}).status_code == 200  # still serving


def test_deep_nesting_and_huge_numbers_are_400_not_500(pipeline: seq2seqkit.Pipeline) -> None:
    with client_for({"reverse": pipeline}, limits=Limits(max_body_bytes=100_000)) as client:
        deep = client.post("/v1/generate", content=b"[" * 30000 + b"]" * 30000)
        huge = client.post("/v1/generate", content=b'{"inputs": ["a"], "beam": ' + b"9" * 5000 + b"}")
        assert deep.status_code == 400 and "nested too deeply" in deep.json()["error"]
        assert huge.status_code == 400 and "too many digits" in huge.json()["error"]


def test_unknown_routes_and_methods_are_json(client: TestClient) -> None:
    assert client.get("/nothing").json() == {"error": "Not Found"}
    response = client.get("/v1/generate")
    assert response.status_code == 405 and response.json() == {"error": "Method Not Allowed"}


def test_a_failing_model_is_a_500_without_a_traceback(
    pipeline: seq2seqkit.Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals")

    with client_for({"reverse": pipeline}) as client:
        monkeypatch.setattr(pipeline, "generate", broken)
        response = client.post("/v1/generate", json={"inputs": ["abc"]})
        assert response.status_code == 500
        assert response.json() == {"error": "internal server error (see the server's log)"}
        monkeypatch.undo()
        assert client.post("/v1/generate", json={"inputs": ["abc"]}).status_code == 200


def test_a_request_over_the_timeout_is_a_504_and_is_not_decoded(
    pipeline: seq2seqkit.Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    limits = Limits(timeout_s=0.1)
    with client_for({"reverse": pipeline}, limits=limits, batch_wait_ms=400) as client:
        monkeypatch.setattr(pipeline, "generate", lambda texts, **kw: calls.append(texts))
        response = client.post("/v1/generate", json={"inputs": ["abc"]})
        assert response.status_code == 504
        assert response.json()["error"] == "not decoded within 0.1 s (the server's --timeout)"
        time.sleep(0.5)  # the batch window closes: the abandoned job is dropped, not decoded
        assert calls == []
        assert client.get("/health").status_code == 200


# A real server on loopback: disconnects, half-sent bodies, SIGTERM.


@pytest.fixture
def server(start_server: Callable[..., Any], reverse_model: Path) -> Any:
    return start_server(reverse_model, "--batch-wait-ms", "300", "--max-body-bytes", "5000")


def raw_request(server: Any, payload: bytes, send: int | None = None) -> socket.socket:
    """A socket that sent ``payload`` (or only its first ``send`` bytes) of a POST /v1/generate."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    head = (
        f"POST /v1/generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode()
    sock.sendall(head + payload[:send])
    return sock


def test_clients_that_vanish_leave_the_server_serving(server: Any) -> None:
    gone = raw_request(server, b'{"inputs": ["abc"]}')  # waits in the 300 ms batch window
    time.sleep(0.1)
    gone.close()
    raw_request(server, b'{"inputs": ["abcdef"]}', send=5).close()  # body cut short
    response = httpx.post(f"{server.url}/v1/generate", json={"inputs": ["abc"]}, timeout=10)
    assert response.status_code == 200 and response.json()["outputs"][0]["source_tokens"] == ["a", "b", "c"]
    time.sleep(0.5)
    lines = [json.loads(line) for line in server.log.splitlines() if line.startswith("{")]
    assert any(line["status"] == 499 for line in lines), server.log  # logged as gone
    assert "Traceback" not in server.log


def test_oversized_and_chunked_bodies_get_413(server: Any) -> None:
    big = b'{"inputs": ["' + b"a" * 6000 + b'"]}'
    response = httpx.post(f"{server.url}/v1/generate", content=big, timeout=10)
    assert response.status_code == 413 and response.json()["field"] == "body"
    chunked = httpx.post(f"{server.url}/v1/generate", content=iter([big[:3000], big[3000:]]), timeout=10)
    assert chunked.status_code == 413
    assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200


def test_sigterm_lets_requests_in_flight_finish(server: Any) -> None:
    result: dict[str, httpx.Response] = {}

    def ask() -> None:
        result["response"] = httpx.post(f"{server.url}/v1/generate", json={"inputs": ["abc"]}, timeout=20)

    thread = threading.Thread(target=ask)
    thread.start()
    time.sleep(0.15)  # the request is in its 300 ms batch window
    assert server.stop() in (0, -15)  # uvicorn re-raises the signal once it has shut down
    thread.join()
    assert result["response"].status_code == 200
    assert "Finished server process" in server.log and "Traceback" not in server.log


def test_serve_reports_a_bad_model_dir_in_one_line(tmp_path: Path, seq2seqkit_command: list[str]) -> None:
    result = subprocess.run(
        [*seq2seqkit_command, "serve", str(tmp_path / "missing")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr.startswith("seq2seqkit: error: ") and result.stderr.count("\n") == 1


def test_a_taken_port_is_an_error(server: Any, reverse_model: Path, seq2seqkit_command: list[str]) -> None:
    command = [*seq2seqkit_command, "serve", str(reverse_model), "--port", str(server.port)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "address already in use" in result.stderr
    assert (
        result.stderr.splitlines()[-1]
        == f"seq2seqkit: error: could not serve on {server.url} (see the message above)"
    )


def test_a_transformer_is_served_and_ensembled(tmp_path: Path) -> None:
    """The server and ensembles take a Transformer as they take an RNN: nothing of theirs knows."""

    tiny = {"encoder_layers": 1, "decoder_layers": 1, "d_model": 16, "heads": 2, "ff_size": 32}
    models = []
    for seed in (1, 2):
        raw = reverse_config(seed).to_dict()
        raw["model"] = {"architecture": "transformer", "transformer": tiny}
        models.append(seq2seqkit.load(seq2seqkit.train(task_config(raw), tmp_path / f"seed{seed}")))
    inputs = ["abc", "hgfedcba"]
    with client_for({"t": models[0]}) as client:
        summary = client.get("/v1/models").json()["models"][0]["model"]
        assert summary["architecture"] == "transformer" and summary["d_model"] == 16
        body = client.post("/v1/generate", json={"inputs": inputs, "beam": 3, "attention": True}).json()
    expected = models[0].generate(inputs, beam=3)
    assert [o["hypotheses"][0]["text"] for o in body["outputs"]] == [o.text for o in expected]
    attention = body["outputs"][1]["hypotheses"][0]["attention"]
    assert all(sum(row) == pytest.approx(1.0, abs=1e-3) for row in attention)
    both = seq2seqkit.ensemble(models).generate(inputs, beam=3)
    assert len(both) == 2 and all(o.text is not None for o in both)
