"""Built-in recipes by name, paths as before, the corpus hint, the optional extras and the version."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from seq2seqkit import extras, recipes
from seq2seqkit.config import DataConfig
from seq2seqkit.errors import ConfigError, DataError
from seq2seqkit.version import __version__

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "seq2seqkit", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=cwd)


def test_a_builtin_name_is_its_recipe_and_a_path_is_a_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert recipes.resolve("g2p") == recipes.builtin_dir() / "g2p.yaml"
    assert recipes.load_config("g2p").name == "g2p"
    own = tmp_path / "mine.yaml"
    own.write_text("task: reverse\n")
    assert recipes.load_config(own).task == "reverse"
    assert recipes.resolve("mine.yaml") == Path("mine.yaml")


def test_a_name_that_is_both_a_file_and_a_recipe_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "g2p").write_text("task: reverse\n")
    with pytest.raises(ConfigError, match=r"g2p: both a file here and a built-in recipe; write \./g2p"):
        recipes.resolve("g2p")
    assert recipes.resolve("./g2p") == Path("g2p")


def test_an_unknown_name_suggests_the_closest_recipe(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        ConfigError, match=r"g2q: no such recipe file or built-in recipe; did you mean 'g2p'\?"
    ):
        recipes.resolve("g2q")


def test_every_builtin_recipe_loads_and_describes_itself_in_one_line() -> None:
    rows = recipes.listing()
    assert [name for name, _, _ in rows] == sorted(p.stem for p in recipes.builtin_dir().glob("*.yaml"))
    for name, task, description in rows:
        assert task and description and "\n" not in description, name
        raw = yaml.safe_load((recipes.builtin_dir() / f"{name}.yaml").read_text())
        assert raw["name"] == name and raw["description"] == description, "set in the file, not inherited"


def test_the_recipes_command_lists_them_and_prints_one() -> None:
    listed = cli("recipes")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert len(lines) == len(recipes.builtin_names())
    assert re.match(r"g2p +g2p +Grapheme-to-phoneme", next(line for line in lines if line.startswith("g2p ")))
    shown = cli("recipes", "toy_reverse")
    assert shown.stdout == (recipes.builtin_dir() / "toy_reverse.yaml").read_text()


def test_a_printed_recipe_with_a_base_stands_alone(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("mine.yaml").write_text(recipes.standalone_text("g2p_long"))
    assert "base" not in yaml.safe_load(Path("mine.yaml").read_text())
    assert recipes.load_config("mine.yaml") == recipes.load_config("g2p_long")


def test_version_has_one_source() -> None:
    result = cli("--version")
    assert result.stdout.strip() == f"seq2seqkit {__version__}"
    assert 'version = {attr = "seq2seqkit.version.__version__"}' in (ROOT / "pyproject.toml").read_text()
    assert "__version__ = " not in (ROOT / "src/seq2seqkit/__init__.py").read_text()


def test_a_missing_corpus_says_what_to_fetch_and_where(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = DataConfig(train="../shared/data/squad/train-v1.1.json")
    with pytest.raises(DataError) as caught:
        recipes.check_corpora(data)
    message = str(caught.value)
    assert message.startswith("../shared/data/squad: missing") and "SQuAD v1.1" in message
    assert "train-v1.1.json" in message and "\n" not in message
    (tmp_path.parent / "shared/data/squad").mkdir(parents=True)
    recipes.check_corpora(data)  # present: reading it is the reader's business
    recipes.check_corpora(DataConfig(train="my/data/train"))  # not one of ours: nothing to say


def test_a_missing_builtin_corpus_stops_training_in_one_line(tmp_path: Path) -> None:
    result = cli("train", "summarize-debian", "--output", str(tmp_path / "m"), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "../shared/data/debian: missing" in result.stderr


def test_a_missing_extra_names_the_pip_command(monkeypatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "onnx" else real(name))
    with pytest.raises(extras.MissingExtraError) as caught:
        extras.require("onnx")
    assert str(caught.value) == (
        "seq2seqkit export needs onnx, which is not installed: pip install 'seq2seqkit[onnx]'"
    )
    extras.require("speech")  # installed here


def test_export_without_onnx_fails_in_one_line(tmp_path: Path) -> None:
    """onnx made unimportable, as in an install without the extra."""
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(
        "import importlib.util\n_real = importlib.util.find_spec\n"
        "importlib.util.find_spec = lambda name, *a: None if name == 'onnx' else _real(name, *a)\n"
    )
    env = {"PYTHONPATH": str(hide), "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "seq2seqkit", "export", str(tmp_path), "--output", str(tmp_path / "x")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 1
    assert result.stderr == (
        "seq2seqkit: error: seq2seqkit export needs onnx, which is not installed: "
        "pip install 'seq2seqkit[onnx]'\n"
    )
