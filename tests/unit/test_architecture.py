"""The import graph is the one ARCHITECTURE.md draws: dependencies point one way, and
``import seq2seqkit`` does not load the trainer. Read from the source (module-level imports)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "seq2seqkit"
# modules every layer may use: the typed config, errors, the model directory, the processor, the
# optional packages, the version
LEAVES = {"config", "errors", "checkpoint", "device", "extras", "version"}
# what each folder may import of the package, beside itself and the leaves
ALLOWED = {
    "kernels": set(),
    "data": set(),
    "metrics": set(),
    "model": {"kernels"},
    "training": {"data", "model", "kernels"},
    "decoding": {"data", "model"},
    "tasks": {"data", "metrics"},
}
LONGEST_FUNCTION = 60  # lines; the kernels' autograd forward/backward are the exceptions
LONG_KERNELS = {("input_feeding.py", "forward"), ("input_feeding.py", "backward")}


def package_imports(path: Path) -> set[str]:
    """First-level names of ``seq2seqkit`` that a module imports at module level: not in functions,
    nor under ``if TYPE_CHECKING:`` (annotations only)."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("seq2seqkit"):
            parts = node.module.split(".")
            if len(parts) == 1:  # from seq2seqkit import checkpoint
                names.update(alias.name for alias in node.names)
            else:
                names.add(parts[1])
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[1] for a in node.names if a.name.startswith("seq2seqkit."))
    return names


@pytest.mark.parametrize("folder", sorted(ALLOWED))
def test_each_layer_imports_only_what_is_below_it(folder: str) -> None:
    for path in sorted((PACKAGE / folder).glob("*.py")):
        outside = package_imports(path) - {folder} - LEAVES - ALLOWED[folder]
        assert not outside, f"{path.relative_to(PACKAGE)} imports {sorted(outside)}"


def test_leaves_import_no_layer_above_them() -> None:
    for leaf in LEAVES:
        assert package_imports(PACKAGE / f"{leaf}.py") <= LEAVES, leaf


def test_the_config_knows_no_task() -> None:
    """tasks/ builds on the config, not the other way round: not even inside a function."""
    imported = {
        node.module
        for node in ast.walk(ast.parse((PACKAGE / "config.py").read_text()))
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert not {name for name in imported if name.startswith(("seq2seqkit.tasks", "seq2seqkit.recipes"))}


def test_import_seq2seqkit_does_not_load_the_trainer() -> None:
    code = "import sys, seq2seqkit; print(sorted(m for m in sys.modules if m.startswith('seq2seqkit.')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "seq2seqkit.workflow" not in loaded and "seq2seqkit.training.trainer" not in loaded
    assert "seq2seqkit.pipeline" in loaded


def test_only_the_command_line_reaches_the_server() -> None:
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.parent.name != "serve" and path.name != "cli.py":
            assert "serve" not in package_imports(path), path.relative_to(PACKAGE)
    code = "import sys, seq2seqkit; print('fastapi' in sys.modules, 'uvicorn' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.split() == ["False", "False"]  # the web stack loads only for `seq2seqkit serve`


def test_functions_fit_on_a_screen() -> None:
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and (path.name, node.name) not in LONG_KERNELS:
                length = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                assert length <= LONGEST_FUNCTION, f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}"
