"""Fixtures for the server tests: tiny trained models, and `seq2seqkit serve` running on loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

import seq2seqkit
from seq2seqkit.config import Config
from seq2seqkit.tasks import task_config

SCRIPT = Path(sys.executable).parent / "seq2seqkit"
COMMAND = [str(SCRIPT)] if SCRIPT.is_file() else [sys.executable, "-m", "seq2seqkit.cli"]
TINY = {
    "embedding_size": 16,
    "dropout": 0.0,
    "encoder": {"hidden_size": 16, "num_layers": 1},
    "decoder": {"hidden_size": 32, "num_layers": 1},
}
FAST = {"precision": "float32", "threads": 1, "batch_tokens": 800}


def reverse_config(seed: int = 1) -> Config:
    """A tiny model that starts to learn to reverse letters in a few seconds (``seed``: its draws)."""
    return task_config(
        {
            "task": "reverse",
            "data": {"synthetic": {"train_size": 2000, "eval_size": 20, "min_length": 3, "max_length": 8}},
            "model": TINY,
            "training": {**FAST, "max_steps": 80, "validate_every": 80, "lr": 0.01, "seed": seed},
            "decoding": {"beam_size": 3},
        }
    )


@pytest.fixture(scope="session")
def reverse_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model that has started to learn to reverse letters."""
    return seq2seqkit.train(reverse_config(), tmp_path_factory.mktemp("serve") / "reverse")


def tone_manifest(directory: Path) -> Path:
    """A TSV manifest of a few short tones (a letter per pitch) under ``directory``/wav."""
    import soundfile

    (directory / "wav").mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (letter, pitch) in enumerate([("A", 400.0), ("B", 900.0), ("C", 1800.0)] * 4):
        t = np.arange(1600 + 160 * i) / 16000
        soundfile.write(str(directory / "wav" / f"{i}.wav"), 0.4 * np.sin(2 * np.pi * pitch * t), 16000)
        lines.append(f"wav/{i}.wav\t{letter}\n")
    (directory / "manifest.tsv").write_text("".join(lines))
    return directory / "manifest.tsv"


@pytest.fixture(scope="session")
def speech_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny speech model of tones (a letter per pitch), trained a few steps: its transcripts are
    short (max_output_len) and need not be right; the audio files lie in its parent's wav/."""
    pytest.importorskip("soundfile")
    pytest.importorskip("kaldi_native_fbank")
    manifest = str(tone_manifest(tmp_path_factory.mktemp("speech")))
    config = task_config(
        {
            "task": "asr",
            "data": {"train": manifest, "valid": manifest, "test": manifest},
            "model": {**TINY, "ctc_weight": 0.5},
            "training": {**FAST, "max_steps": 20, "validate_every": 20, "evaluate_test": False},
            "decoding": {"beam_size": 2, "max_output_len": 6},
        }
    )
    return seq2seqkit.train(config, Path(manifest).parent / "model")


@pytest.fixture(scope="session")
def fields_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model reading two source fields (question, context); trained 3 steps: only its shape matters."""
    directory = tmp_path_factory.mktemp("fields")
    lines = [json.dumps({"question": f"q {i}", "context": f"c {i} d", "answer": f"a {i}"}) for i in range(20)]
    for split in ("train", "valid", "test"):
        (directory / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    config = task_config(
        {
            "task": "translation",
            "data": {
                "format": "jsonl",
                **{split: str(directory / f"{split}.jsonl") for split in ("train", "valid", "test")},
                "src_fields": ["question", "context"],
                "tgt_field": "answer",
                "src_tokenizer": {"type": "word"},
                "tgt_tokenizer": {"type": "word"},
            },
            "model": TINY,
            "training": {**FAST, "max_steps": 3},
            "decoding": {"beam_size": 2, "max_length_offset": 2},
        }
    )
    return seq2seqkit.train(config, directory / "qa")


@pytest.fixture(scope="session")
def seq2seqkit_command() -> list[str]:
    return COMMAND


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A `seq2seqkit serve` process on a free loopback port; ``log`` reads what it wrote so far."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [*COMMAND, "serve", *args, "--port", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ),
        )
        self._wait_until_ready()

    def _wait_until_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"seq2seqkit serve exited: {self.log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"seq2seqkit serve did not start: {self.log}")

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start `seq2seqkit serve ARGS...`; every server started is stopped after the test."""
    servers: list[Server] = []

    def start(*args: object) -> Server:
        server = Server([str(a) for a in args], tmp_path / f"serve-{len(servers)}.log")
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
