"""Load on `seq2seqkit serve`: N concurrent clients on loopback, with dynamic batching on and off.

    .venv/bin/python bench/serve.py runs/g2p                        # 1, 8, 32, 128 clients, ~2.5 min
    .venv/bin/python bench/serve.py runs/g2p --seconds 3 --clients 1 8   # a quick look

For each model and each mode (batching on, then off) it starts `seq2seqkit serve` on a free loopback
port, warms it up, then for each client count runs that many clients for --seconds (or until
--max-requests have been sent): each client sends one input per request (the next line of the
model's test split, or of --inputs), waits for the answer, and sends the next. It reports
requests/s, latency percentiles (p50/p95/p99, milliseconds), errors (any status but 200, or a
broken connection), and the mean inputs per decoded batch (from the server's /metrics). The last
lines give, for each mode, throughput at 32 clients over throughput at 1 client.

The clients share the machine with the server (a raw HTTP/1.1 client on asyncio, one keep-alive
connection each, so that they cost little next to the decoding).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import seq2seqkit
from seq2seqkit.data.readers import read_lines
from seq2seqkit.data.vocab import FIELD_SEPARATOR
from seq2seqkit.tasks import read_split

COMMAND = Path(sys.executable).parent / "seq2seqkit"
COLUMNS = [
    "batching",
    "clients",
    "requests",
    "errors",
    "requests/s",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "inputs/batch",
]


@dataclass
class Run:
    """One client count in one mode: what the clients saw and what the server batched."""

    mode: str
    clients: int
    seconds: float
    latencies: list[float]
    errors: int
    batches: int
    batched_inputs: int

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, q: int) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] * 1000 if self.latencies else float("nan")
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[q - 1] * 1000

    def row(self) -> str:
        batch = self.batched_inputs / self.batches if self.batches else float("nan")
        cells = [self.mode, self.clients, len(self.latencies), self.errors, f"{self.rps:.1f}"]
        cells += [f"{self.percentile(q):.0f}" for q in (50, 95, 99)] + [f"{batch:.1f}"]
        return "| " + " | ".join(map(str, cells)) + " |"


class Client:
    """One keep-alive HTTP/1.1 connection posting JSON bodies."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        await self.writer.drain()
        header = await self.reader.readuntil(b"\r\n\r\n")
        status = int(header.split(b" ", 2)[1])
        length = re.search(rb"(?i)content-length: *(\d+)", header)
        await self.reader.readexactly(int(length.group(1)) if length else 0)
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


async def load(port: int, inputs: list[bytes], clients: int, seconds: float, max_requests: int) -> tuple:
    """Latencies of the answered requests, errors, and the wall time, for ``clients`` clients."""
    latencies: list[float] = []
    errors = 0
    sent = 0
    deadline = time.perf_counter() + seconds

    async def client(index: int) -> None:
        nonlocal errors, sent
        connection = Client(port)
        position = index * 7919  # each client walks the inputs from its own place
        while time.perf_counter() < deadline and sent < max_requests:
            sent += 1
            body = inputs[position % len(inputs)]
            position += 1
            start = time.perf_counter()
            try:
                status = await connection.post("/v1/generate", body)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                errors += 1
                connection.close()
                continue
            if status == 200:
                latencies.append(time.perf_counter() - start)
            else:
                errors += 1
        connection.close()

    start = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    return latencies, errors, time.perf_counter() - start


def batch_counts(port: int) -> tuple[int, int]:
    """(batches, inputs) decoded so far, summed over models, from /metrics."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        text = b"".join(iter(lambda: sock.recv(65536), b"")).decode()
    count = sum(float(v) for v in re.findall(r"^seq2seqkit_batch_inputs_count\{.*\} (\S+)$", text, re.M))
    total = sum(float(v) for v in re.findall(r"^seq2seqkit_batch_inputs_sum\{.*\} (\S+)$", text, re.M))
    return int(count), int(total)


def start_server(model: Path, batching: bool, wait_ms: float, log: Path) -> tuple[subprocess.Popen, int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [str(COMMAND), "serve", str(model), "--port", str(port), "--timeout", "120"]
    command += ["--batch-wait-ms", str(wait_ms)]
    process = subprocess.Popen(
        [*command, *([] if batching else ["--no-batching"])], stdout=log.open("w"), stderr=subprocess.STDOUT
    )
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            if process.poll() is not None:
                raise SystemExit(f"seq2seqkit serve failed: {log.read_text()}") from None
            time.sleep(0.1)
    raise SystemExit("seq2seqkit serve did not start within a minute")


def request_bodies(model: Path, inputs: Path | None, beam: int | None) -> list[bytes]:
    """One request body per input: the lines of --inputs, else the sources of the model's test split."""
    config = seq2seqkit.load(model).config
    if inputs is not None:
        texts = [text for _, text in read_lines(inputs) if text.strip()]
    else:
        texts = [pair.src for pair in read_split(config, "test")]
    if not texts:
        raise SystemExit("no inputs: give --inputs FILE (one input per line)")
    fields = config.data.src_fields  # such a model takes objects: its fields, split at <sep>
    values = [
        dict(zip(fields, text.split(f" {FIELD_SEPARATOR} "), strict=True)) if fields else text
        for text in texts
    ]
    extra = {} if beam is None else {"beam": beam}
    return [json.dumps({"inputs": [value], **extra}).encode() for value in values]


def bench_mode(model: Path, batching: bool, bodies: list[bytes], args: argparse.Namespace) -> list[Run]:
    mode = "on" if batching else "off"
    log = Path(args.log_dir) / f"serve-{model.name}-{mode}.log"
    process, port = start_server(model, batching, args.batch_wait_ms, log)
    runs = []
    try:
        asyncio.run(load(port, bodies, 4, 2.0, 10**9))  # warm up: first calls pay for allocation
        for clients in args.clients:
            before = batch_counts(port)
            latencies, errors, wall = asyncio.run(
                load(port, bodies, clients, args.seconds, args.max_requests)
            )
            after = batch_counts(port)
            run = Run(mode, clients, wall, latencies, errors, after[0] - before[0], after[1] - before[1])
            print(run.row(), flush=True)
            runs.append(run)
    finally:
        process.terminate()
        process.wait(timeout=60)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("models", type=Path, nargs="+", help="model directories")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--seconds", type=float, default=15.0, help="per client count (default 15)")
    parser.add_argument("--max-requests", type=int, default=20000, help="per client count (default 20000)")
    parser.add_argument("--inputs", type=Path, help="inputs, one per line (default: the model's test split)")
    parser.add_argument("--beam", type=int, help="beam size (default: the model's)")
    parser.add_argument("--batch-wait-ms", type=float, default=5.0, help="the server's (default 5)")
    parser.add_argument("--modes", nargs="+", choices=["on", "off"], default=["on", "off"])
    parser.add_argument("--log-dir", default="/tmp", help="where the servers' logs go (default /tmp)")
    args = parser.parse_args()
    for model in args.models:
        bodies = request_bodies(model, args.inputs, args.beam)
        beam = args.beam or "the model's"
        print(f"\n{model}: {len(bodies)} distinct inputs, beam {beam}, {args.seconds:g} s per row")
        print("| " + " | ".join(COLUMNS) + " |")
        print("|---" * len(COLUMNS) + "|")
        runs = [run for mode in args.modes for run in bench_mode(model, mode == "on", bodies, args)]
        for mode in args.modes:
            by_clients = {run.clients: run for run in runs if run.mode == mode}
            if 1 in by_clients and 32 in by_clients:
                ratio = by_clients[32].rps / by_clients[1].rps
                print(f"batching {mode}: throughput at 32 clients / 1 client = {ratio:.1f}x")


if __name__ == "__main__":
    main()
