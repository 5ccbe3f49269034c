"""The optional parts of the toolkit (pip extras) and the one-line error when one is missing.

The base install trains, generates and evaluates text models. Serving, audio, ONNX export and
pictures need more packages; a command that needs a missing one says which ``pip install`` to run
instead of failing deep inside a library.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from seq2seqkit.errors import Seq2SeqError

# extra -> (what it is for, the modules it brings)
EXTRAS = {
    "serve": ("seq2seqkit serve", ("fastapi", "uvicorn", "pydantic", "prometheus_client", "fastapi_offline")),
    "speech": ("audio input", ("soundfile", "soxr", "kaldi_native_fbank")),
    "onnx": ("seq2seqkit export", ("onnx", "onnxruntime")),
    "plots": ("pictures", ("matplotlib",)),
}


class MissingExtraError(Seq2SeqError):
    """A command needs an optional package that is not installed."""


def require(extra: str) -> None:
    """Raise ``MissingExtraError`` unless every module of ``extra`` can be imported."""
    purpose, modules = EXTRAS[extra]
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtraError(
            f"{purpose} needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not "
            f"installed: pip install 'seq2seqkit[{extra}]'"
        )


def load(extra: str, module: str) -> ModuleType:
    """``module`` of ``extra``, imported, or ``MissingExtraError``."""
    require(extra)
    return importlib.import_module(module)
