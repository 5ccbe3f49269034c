"""The model directory on disk: what is saved where, and loading it without running any code.

    DIR/config.yaml              the resolved config (plain YAML, read with yaml.safe_load)
    DIR/src_vocab.txt, tgt_vocab.txt
    DIR/src.spm.model, ...       SentencePiece models, when used
    DIR/model.safetensors        the best weights (what ``seq2seq.load`` uses)
    DIR/checkpoints/last/        model + optimizer tensors (safetensors) and state.json: for resuming
    DIR/train.log, DIR/validations.jsonl

Nothing here is a pickle: weights and optimizer moments are safetensors, everything else is text.
Each file is written to a temporary name and renamed, so a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model

from seq2seq.config import Config, config_from_dict
from seq2seq.errors import ConfigError, ModelFileError

CONFIG, WEIGHTS, LAST = "config.yaml", "model.safetensors", "checkpoints/last"
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".pkl", ".pickle", ".ckpt")


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file, fsync and rename."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def save_config(directory: Path, config: Config) -> None:
    text = yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True)
    atomic_write(directory / CONFIG, text.encode("utf-8"))


def load_config_from_dir(directory: Path) -> Config:
    check_model_dir(directory)
    path = directory / CONFIG
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return config_from_dict(raw or {}, source=str(path))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{path}: damaged config ({type(err).__name__})") from None
    except ConfigError as err:
        raise ModelFileError(f"{path}: not a config of this toolkit: {err}") from None


def check_model_dir(directory: Path) -> None:
    """Refuse what is not a model directory of ours, and anything holding pickles."""
    if not directory.is_dir():
        raise ModelFileError(f"{directory}: no such model directory")
    pickles = sorted(p.name for p in directory.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise ModelFileError(
            f"{directory}: refusing to load {pickles[0]}: pickle files can run code when loaded; "
            "this toolkit reads only safetensors, YAML and text"
        )
    if not (directory / CONFIG).is_file():
        raise ModelFileError(f"{directory}: not a model directory (no {CONFIG})")


def _save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def save_weights(path: Path, model: torch.nn.Module) -> None:
    tmp = path.with_name(path.name + ".tmp")
    save_model(model, str(tmp))  # handles tied (shared) weights, unlike save_file
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def load_weights(path: Path, model: torch.nn.Module) -> None:
    if not path.is_file():
        raise ModelFileError(f"{path}: no such weights file")
    try:
        missing, unexpected = load_model(model, str(path), strict=False)
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ModelFileError(f"{path}: cannot load weights ({str(err).splitlines()[0]})") from None
    if missing or unexpected:
        name = (list(missing) + list(unexpected))[0]
        raise ModelFileError(
            f"{path}: weights do not match the configured model ({name!r} "
            f"{'missing' if missing else 'unexpected'})"
        )


def save_training_state(
    directory: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    state: dict[str, Any],
) -> None:
    """Everything needed to resume exactly: weights, optimizer moments, and a JSON state
    (step, data position, scheduler, RNG). The JSON is written last: it marks the set complete."""
    directory.mkdir(parents=True, exist_ok=True)
    save_weights(directory / WEIGHTS, model)
    opt = optimizer.state_dict()
    tensors, moments = {}, {}
    for index, param_state in opt["state"].items():
        moments[str(index)] = {}
        for key, value in param_state.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{key}"] = value
            else:
                moments[str(index)][key] = value
    tensors["rng.torch"] = torch.get_rng_state()
    _save_tensors(directory / "optimizer.safetensors", tensors)
    payload = {**state, "param_groups": opt["param_groups"], "optimizer_scalars": moments}
    atomic_write(directory / "state.json", json.dumps(payload, indent=1).encode("utf-8"))


def load_training_state(
    directory: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> dict[str, Any]:
    """Restore what ``save_training_state`` wrote; returns its JSON state."""
    for name in ("state.json", "optimizer.safetensors", WEIGHTS):
        if not (directory / name).is_file():
            raise ModelFileError(f"{directory / name}: missing; cannot resume")
    try:
        payload = json.loads((directory / "state.json").read_text(encoding="utf-8"))
        tensors = load_file(str(directory / "optimizer.safetensors"))
    except (json.JSONDecodeError, SafetensorError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{directory}: damaged checkpoint ({type(err).__name__})") from None
    load_weights(directory / WEIGHTS, model)
    param_state: dict[int, dict[str, Any]] = {}
    for index, scalars in payload.pop("optimizer_scalars").items():
        param_state[int(index)] = dict(scalars)
    for key, value in tensors.items():
        if key.startswith("rng."):
            continue
        index, name = key.split(".", 1)
        param_state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": param_state, "param_groups": payload.pop("param_groups")})
    torch.set_rng_state(tensors["rng.torch"])
    return payload
