"""scripts/synthesize_speech.py: 16 kHz mono WAVs that match their manifests, the noise at the SNR
asked for, seeded runs that repeat exactly, and one-line errors with exit code 2."""

from __future__ import annotations

import ast
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

sf = pytest.importorskip("soundfile")
pytest.importorskip("soxr")

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "synthesize_speech.py"
LINES = (
    "Hello world.\n\n  the quick brown fox  \n-a line that starts with a dash\nnot read: past --max-lines\n"
)
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")


def load_script() -> ModuleType:
    """The script as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("synthesize_speech", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def script() -> ModuleType:
    return load_script()


@pytest.fixture(scope="module")
def corpora(script: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three runs of the same three lines: noisy, the same again, and clean; all seed 7."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    root = tmp_path_factory.mktemp("synth")
    text = root / "lines.txt"
    text.write_text(LINES, encoding="utf-8")
    runs = {"noisy": ["--noise-db", "20"], "again": ["--noise-db", "20"], "clean": ["--noise-db", "none"]}
    for name, noise in runs.items():
        argv = [str(text), str(root / name), "--voices", "en-us,en-gb+f3", "--seed", "7", "--max-lines", "3"]
        assert script.main(argv + noise) == 0
    return {name: root / name for name in runs}


def read_manifests(out_dir: Path) -> tuple[list[list[str]], list[dict]]:
    tsv = [line.split("\t") for line in (out_dir / "manifest.tsv").read_text(encoding="utf-8").splitlines()]
    jsonl = [
        json.loads(line) for line in (out_dir / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    return tsv, jsonl


def test_wavs_are_16k_mono_speech_of_the_stated_duration(corpora: dict[str, Path]) -> None:
    tsv, jsonl = read_manifests(corpora["noisy"])
    assert [row["text"] for row in jsonl] == [
        "Hello world.",
        "the quick brown fox",
        "-a line that starts with a dash",
    ]
    for row in jsonl:
        info = sf.info(corpora["noisy"] / row["audio_filepath"])
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert row["duration"] == pytest.approx(info.frames / 16000, abs=1e-5)
        audio, _ = sf.read(corpora["noisy"] / row["audio_filepath"])
        assert 0.3 < info.duration < 5 and np.sqrt(np.mean(audio**2)) > 0.01  # speech, not silence
    assert [[row["audio_filepath"], row["text"]] for row in jsonl] == tsv


def test_noise_is_added_at_the_requested_snr(corpora: dict[str, Path]) -> None:
    _, jsonl = read_manifests(corpora["noisy"])
    for row in jsonl:
        noisy, _ = sf.read(corpora["noisy"] / row["audio_filepath"])
        clean, _ = sf.read(corpora["clean"] / row["audio_filepath"])
        assert noisy.shape == clean.shape  # the same voice, speed and pitch: only the noise differs
        snr_db = 10 * np.log10(np.mean(clean**2) / np.mean((noisy - clean) ** 2))
        assert snr_db == pytest.approx(20, abs=1)


def test_the_same_seed_gives_identical_files(corpora: dict[str, Path]) -> None:
    for name in ("wav/000000.wav", "wav/000001.wav", "wav/000002.wav", "manifest.tsv", "manifest.jsonl"):
        assert (corpora["noisy"] / name).read_bytes() == (corpora["again"] / name).read_bytes(), name


def test_a_missing_text_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    command = [sys.executable, str(SCRIPT), str(tmp_path / "missing.txt"), str(tmp_path / "out")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"synthesize_speech: error: text file not found: {tmp_path / 'missing.txt'}"
    ]


@needs_espeak
def test_an_unknown_voice_names_the_voice_and_espeaks_reason(
    script: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tmp_path / "lines.txt"
    text.write_text("hello\n", encoding="utf-8")
    assert script.main([str(text), str(tmp_path / "out"), "--voices", "en-us,xx-no-such-voice"]) == 2
    message = capsys.readouterr().err.strip().splitlines()
    assert len(message) == 1 and "'xx-no-such-voice'" in message[0] and "does not exist" in message[0]


def test_missing_espeak_and_empty_text_are_one_line_errors(
    script: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    empty, text = tmp_path / "empty.txt", tmp_path / "lines.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    text.write_text("hello\n", encoding="utf-8")
    assert script.main([str(empty), str(tmp_path / "out")]) == 2
    assert "no non-empty lines" in capsys.readouterr().err
    monkeypatch.setenv("PATH", str(tmp_path))  # a folder without espeak-ng
    assert script.main([str(text), str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "synthesize_speech: error: espeak-ng not found on PATH; install it with: apt-get install espeak-ng"
    ]


def test_functions_fit_on_a_screen() -> None:
    for node in ast.walk(ast.parse(SCRIPT.read_text())):
        if isinstance(node, ast.FunctionDef):
            assert node.end_lineno - node.lineno + 1 <= 60, node.name  # type: ignore[operator]
