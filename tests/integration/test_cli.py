"""The ``seq2seqkit`` command, run as a user runs it: train, generate, evaluate, help and errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import seq2seqkit
from seq2seqkit import checkpoint, metrics
from seq2seqkit.errors import ConfigError
from seq2seqkit.evaluation import evaluate
from seq2seqkit.tasks import read_split, task_of

REPO = Path(__file__).resolve().parents[2]
TOY_CONFIG = REPO / "src" / "seq2seqkit" / "recipes" / "toy_reverse.yaml"
SCRIPT = Path(sys.executable).parent / "seq2seqkit"
COMMAND = [str(SCRIPT)] if SCRIPT.is_file() else [sys.executable, "-m", "seq2seqkit.cli"]
ENV = dict(os.environ)  # conftest sets OMP_NUM_THREADS=1
INPUTS = ["abc", "", "hello", "zyxw", "a b"]


def run(*args: object, stdin: str | bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*COMMAND, *map(str, args)],
        input=stdin,
        capture_output=True,
        text=not isinstance(stdin, bytes),
        env=ENV,
        timeout=180,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """The toy model, trained once for the whole module (a few seconds)."""
    model_dir = tmp_path_factory.mktemp("cli") / "toy"
    result = run(
        "train", TOY_CONFIG, "--output", model_dir,
        "--set", "training.max_steps=120",
        "--set", "training.validate_every=60",
        "--set", "training.threads=1",
        "--set", "training.precision=float32",
        "--set", "data.synthetic.eval_size=50",
        "--set", "model.encoder.hidden_size=32",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return model_dir, result


@pytest.fixture(scope="module")
def model_dir(trained: tuple[Path, subprocess.CompletedProcess]) -> Path:
    return trained[0]


@pytest.fixture(scope="module")
def pipeline(model_dir: Path) -> seq2seqkit.Pipeline:
    return seq2seqkit.load(model_dir)


@pytest.fixture
def input_file(tmp_path: Path) -> Path:
    path = tmp_path / "input.txt"
    path.write_text("".join(line + "\n" for line in INPUTS), encoding="utf-8")
    return path


def test_train_prints_the_model_dir_last(trained: tuple[Path, subprocess.CompletedProcess]) -> None:
    model_dir, result = trained
    lines = result.stdout.splitlines()
    assert lines[-1] == str(model_dir)
    assert lines[0].startswith("test (50 segments, beam 5): exact match")
    assert lines[1].startswith("test (50 segments, greedy): exact match")
    scores = json.loads((model_dir / "test_scores.json").read_text())
    assert scores["beam"] == 5 and 0 <= scores["greedy"]["exact match"] <= 100
    assert (model_dir / "model.safetensors").is_file()
    assert (checkpoint.latest_checkpoint(model_dir) / "state.json").is_file()
    saved = seq2seqkit.load(model_dir).config
    assert saved.training.max_steps == 120 and saved.model.encoder.hidden_size == 32


def test_generate_from_file(model_dir: Path, input_file: Path, pipeline: seq2seqkit.Pipeline) -> None:
    result = run("generate", model_dir, "--input", input_file)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split("\n")
    assert lines[-1] == "" and len(lines) - 1 == len(INPUTS), "one output line per input line"
    assert lines[:-1] == [output.text for output in pipeline.generate(INPUTS)]
    assert lines[1] == "", "an empty input gives an empty output"


def test_generate_from_stdin(model_dir: Path, input_file: Path, pipeline: seq2seqkit.Pipeline) -> None:
    piped = run("generate", model_dir, stdin=input_file.read_text(encoding="utf-8"))
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == "".join(output.text + "\n" for output in pipeline.generate(INPUTS))


def test_generate_beam_one_is_greedy(
    model_dir: Path, input_file: Path, pipeline: seq2seqkit.Pipeline
) -> None:
    result = run("generate", model_dir, "--input", input_file, "--beam", 1, "--scores")
    assert result.returncode == 0, result.stderr
    expected = pipeline.generate(INPUTS, beam=1)
    assert result.stdout.splitlines() == [f"{o.text}\t{o.score:.4f}" for o in expected]


def test_generate_in_bfloat16(model_dir: Path, input_file: Path) -> None:
    """--precision changes how the model computes, not what the model directory holds."""
    before = (model_dir / "config.yaml").read_bytes()
    result = run("generate", model_dir, "--input", input_file, "--precision", "bfloat16")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.split("\n")) - 1 == len(INPUTS)
    assert (model_dir / "config.yaml").read_bytes() == before
    pipeline = seq2seqkit.load(model_dir)
    pipeline.set_decoding(precision="bfloat16")
    assert pipeline.config.decoding.precision == "bfloat16"
    with pytest.raises(ConfigError, match="decoding.precision"):
        pipeline.set_decoding(precision="float8")


def test_generate_nbest(model_dir: Path, pipeline: seq2seqkit.Pipeline) -> None:
    inputs = ["abc", "hello", "zyxw"]
    result = run("generate", model_dir, "--nbest", 3, "--beam", 4, stdin="\n".join(inputs) + "\n")
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert len(rows) == 3 * len(inputs)
    assert all(len(row) == 3 for row in rows)
    assert [int(row[0]) for row in rows] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    expected = pipeline.generate(inputs, beam=4, nbest=3)
    assert rows == [
        [str(i), f"{hyp.score:.4f}", hyp.text]
        for i, output in enumerate(expected)
        for hyp in output.hypotheses
    ]
    for i in range(len(inputs)):
        assert len({row[2] for row in rows[3 * i : 3 * i + 3]}) == 3, "distinct hypotheses"


HYPS = ["the cat sat on the mat", "a dog barked", "hello world", ""]
REFS = ["the cat sat on a mat", "the dog barked loudly", "hello world", "nothing"]


def evaluate_files(tmp_path: Path, *names: str) -> subprocess.CompletedProcess:
    (tmp_path / "hyp.txt").write_text("".join(h + "\n" for h in HYPS), encoding="utf-8")
    (tmp_path / "ref.txt").write_text("".join(r + "\n" for r in REFS), encoding="utf-8")
    metric_args = [arg for name in names for arg in ("--metric", name)]
    return run("evaluate", "--hyp", tmp_path / "hyp.txt", "--ref", tmp_path / "ref.txt", *metric_args)


def expected_scores(*names: str) -> dict[str, str]:
    references = [[r] for r in REFS]
    return {metrics.METRICS[n].name: f"{metrics.METRICS[n].compute(HYPS, references):.2f}" for n in names}


def test_evaluate_files_with_each_metric(tmp_path: Path) -> None:
    names = ["chrf", "wer", "cer", "exact"]
    result = evaluate_files(tmp_path, *names)
    assert result.returncode == 0, result.stderr
    printed = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    assert printed == expected_scores(*names)
    assert printed["exact match"] == "25.00"


def test_evaluate_files_with_bleu(tmp_path: Path) -> None:
    result = evaluate_files(tmp_path, "bleu")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"BLEU: {expected_scores('bleu')['BLEU']}"
    assert lines[1].startswith("BLEU signature: nrefs:1")


def test_evaluate_with_two_references(tmp_path: Path) -> None:
    (tmp_path / "hyp.txt").write_text("hello there\nbye\n", encoding="utf-8")
    (tmp_path / "ref1.txt").write_text("hello here\nbye\n", encoding="utf-8")
    (tmp_path / "ref2.txt").write_text("hello there\nfarewell\n", encoding="utf-8")
    files = ["--hyp", tmp_path / "hyp.txt", "--ref", tmp_path / "ref1.txt", "--ref", tmp_path / "ref2.txt"]
    result = run("evaluate", *files, "--metric", "exact", "--metric", "wer")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["exact match: 100.00", "WER: 0.00"]


def test_evaluate_a_model(model_dir: Path) -> None:
    result = run("evaluate", "--model", model_dir)
    assert result.returncode == 0, result.stderr
    expected = json.loads((model_dir / "test_scores.json").read_text())["exact match"]
    assert result.stdout.splitlines() == [f"exact match: {expected:.2f}"]


def test_evaluate_a_model_on_its_training_split(model_dir: Path, pipeline: seq2seqkit.Pipeline) -> None:
    result = run("evaluate", "--model", model_dir, "--split", "train", "--beam", "1")
    assert result.returncode == 0, result.stderr
    task = task_of(pipeline.config)
    expected = evaluate(pipeline, read_split(pipeline.config, "train"), task, beam=1).scores["exact match"]
    assert result.stdout.splitlines() == [f"exact match: {expected:.2f}"]


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("train", ["--output", "--set", "--resume"]),
        ("generate", ["--input", "--beam", "--nbest", "--length-penalty", "--scores"]),
        ("evaluate", ["--hyp", "--ref", "--metric", "--model", "--split", "--src", "--beam"]),
    ],
)
def test_help(command: str, options: list[str]) -> None:
    result = run(command, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: seq2seqkit {command}")
    for option in options:
        assert option in result.stdout


def test_top_level_help_lists_commands() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert all(command in result.stdout for command in ("train", "generate", "evaluate"))


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    stderr = result.stderr if isinstance(result.stderr, str) else result.stderr.decode()
    assert result.returncode != 0
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("seq2seqkit:")
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def test_error_missing_config_file(tmp_path: Path) -> None:
    result = run("train", tmp_path / "nowhere.yaml", "--output", tmp_path / "out")
    assert_one_line_error(result, "nowhere.yaml", "no such config file")


def test_error_unknown_config_key(tmp_path: Path) -> None:
    result = run("train", TOY_CONFIG, "--output", tmp_path / "out", "--set", "training.max_step=10")
    assert_one_line_error(result, "max_step", "did you mean", "max_steps")
    assert not (tmp_path / "out").exists(), "nothing is written for a bad config"


def test_error_unknown_key_in_file(tmp_path: Path) -> None:
    config = tmp_path / "typo.yaml"
    config.write_text(TOY_CONFIG.read_text().replace("decoding:", "decodng:"), encoding="utf-8")
    result = run("train", config, "--output", tmp_path / "out")
    assert_one_line_error(result, "decodng", "did you mean 'decoding'")


def test_error_missing_model_dir(tmp_path: Path) -> None:
    result = run("generate", tmp_path / "no-model", stdin="abc\n")
    assert_one_line_error(result, "no-model")


def test_error_non_utf8_input_file(model_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("abc\ncaf\u00e9\n".encode("latin-1"))
    result = run("generate", model_dir, "--input", bad)
    assert_one_line_error(result, f"{bad}:2", "UTF-8")
    assert result.stdout == ""


def test_error_non_utf8_stdin(model_dir: Path) -> None:
    result = run("generate", model_dir, stdin="caf\u00e9\n".encode("latin-1"))
    assert_one_line_error(result, "<stdin>:1", "UTF-8")


def test_error_binary_stdin(model_dir: Path) -> None:
    result = run("generate", model_dir, stdin=b"abc\n\x00\x01\x02\n")
    assert_one_line_error(result, "<stdin>:2", "NUL byte")


def test_generate_survives_odd_inputs(model_dir: Path) -> None:
    """Control characters, unseen characters, an empty and an overlong line: one output each."""
    odd = ["a\x07b\x1bc", "\u2603\u00e9\u4e2d", "", "abc" * 200, "\t  \t"]
    result = run("generate", model_dir, "--beam", "2", stdin="\n".join(odd) + "\n")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.split("\n")[:-1]) == len(odd)
    assert "Traceback" not in result.stderr
    assert "truncated" in result.stderr  # the 600-character line is over decoding.max_input_len (400)


def test_generate_writes_attention_heatmaps(model_dir: Path, tmp_path: Path) -> None:
    pictures = tmp_path / "attention"
    result = run("generate", model_dir, "--attention-dir", pictures, stdin="abc\n\nhgfedcba\n")
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in pictures.iterdir())
    assert names == ["00001.png", "00003.png"]  # the empty input has no picture
    assert all((pictures / n).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for n in names)


def test_generate_nbest_writes_a_heatmap_for_every_input(model_dir: Path, tmp_path: Path) -> None:
    pictures = tmp_path / "attention"
    words = ["abc", "hgfedcba", "zz", "a b", "qwertyu"]
    result = run(
        "generate", model_dir, "--nbest", "2", "--attention-dir", pictures, stdin="\n".join(words) + "\n"
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in pictures.iterdir()) == [f"{i:05d}.png" for i in range(1, len(words) + 1)]
    assert [line.split("\t")[0] for line in result.stdout.splitlines()] == [
        str(i) for i in range(5) for _ in "ab"
    ]


def test_analyze_curves(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "curves.png"
    result = run("analyze", "curves", model_dir, "--output", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    assert out.read_bytes()[:4] == b"\x89PNG"
    bad = run("analyze", "curves", model_dir, "--metric", "BLUE", "--output", out)
    assert_one_line_error(bad, "no metric 'BLUE'", "exact match")


def test_analyze_length(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "length.png"
    result = run(
        "analyze", "length", model_dir, model_dir, "--unit", "chars", "--buckets", "3", "--output", out
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("exact match by source length (chars)")
    rows = [line.split("\t") for line in lines[2:-1]]
    assert 1 <= len(rows) <= 3 and all(len(row) == 4 and row[2] == row[3] for row in rows)
    assert sum(int(row[1]) for row in rows) == 50  # every test segment in one bucket
    assert lines[-1] == str(out) and out.read_bytes()[:4] == b"\x89PNG"


def test_error_mismatched_line_counts(tmp_path: Path) -> None:
    (tmp_path / "hyp.txt").write_text("a\nb\nc\n", encoding="utf-8")
    (tmp_path / "ref.txt").write_text("a\nb\n", encoding="utf-8")
    result = run(
        "evaluate", "--hyp", tmp_path / "hyp.txt", "--ref", tmp_path / "ref.txt", "--metric", "exact"
    )
    assert_one_line_error(result, "2 lines", "3")


@pytest.mark.parametrize(
    ("options", "fragment"),
    [(["--beam", "0"], "--beam"), (["--beam", "2", "--nbest", "3"], "--nbest")],
)
def test_error_bad_beam_options(model_dir: Path, options: list[str], fragment: str) -> None:
    result = run("generate", model_dir, *options, stdin="abc\n")
    assert_one_line_error(result, fragment)
    assert result.stdout == ""


def test_error_training_over_a_trained_model(model_dir: Path) -> None:
    result = run("train", TOY_CONFIG, "--output", model_dir)
    assert_one_line_error(result, "--resume")


@pytest.mark.parametrize(
    ("device", "fragment"),
    [("gpu", "not one of auto, cpu, cuda, cuda:N"), ("cuda:7", "cuda:7")],
)
def test_error_bad_device(model_dir: Path, device: str, fragment: str) -> None:
    if device.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    result = run("generate", model_dir, "--device", device, stdin="abc\n")
    assert_one_line_error(result, fragment)
    result = run("train", TOY_CONFIG, "--output", model_dir.parent / "bad-device", "--device", device)
    assert_one_line_error(result, fragment)
