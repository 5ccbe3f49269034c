"""The model directory on disk: what is saved where, and loading it without running any code.

    DIR/config.yaml              the resolved config (plain YAML, read with yaml.safe_load)
    DIR/format.json              the format revision of this layout and the version that wrote it
    DIR/src_vocab.txt, tgt_vocab.txt
    DIR/src.spm.model, ...       SentencePiece models, when used
    DIR/checksums.json           SHA-256 of the files above (written once, when training starts)
    DIR/model.safetensors        the best weights (what ``seq2seqkit.load`` uses)
    DIR/checkpoints/step-N/      model + optimizer tensors (safetensors) and state.json: for resuming
    DIR/checkpoints/latest       the name of the newest complete step-N directory
    DIR/averaging/step-N.safetensors  weights of the last validations (training.average_last),
    DIR/averaged.json            and their mean's validation scores
    DIR/train.log, DIR/validations.jsonl

Nothing here is a pickle: weights and optimizer moments are safetensors, everything else is text.
Each file is written to a temporary name, fsynced and renamed, so a crash never leaves half a
file; a checkpoint directory counts only once ``latest`` names it, so a crash while writing one
leaves the previous checkpoint in charge. Every safetensors file carries the SHA-256 of its
tensors in its header, and text files are listed in checksums.json: damage is found at load.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from seq2seqkit.config import Config, config_from_dict
from seq2seqkit.errors import ConfigError, ModelFileError
from seq2seqkit.version import __version__

CONFIG, WEIGHTS, CHECKSUMS, FORMAT = "config.yaml", "model.safetensors", "checksums.json", "format.json"
# The layout revision of a model directory: raise it with any change that an older toolkit would
# misread, and teach ``check_format`` to read (or name how to convert) the older ones. Directories
# from before revisions were recorded have no format.json: revision 0, the same layout as 1.
FORMAT_REVISION = 1
CHECKPOINTS, AVERAGING = "checkpoints", "averaging"
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


def save_format(directory: Path) -> None:
    record = {"format_revision": FORMAT_REVISION, "written_by": f"seq2seqkit {__version__}"}
    atomic_write(directory / FORMAT, json.dumps(record, indent=1).encode("utf-8"))


def check_format(directory: Path) -> None:
    """Refuse a directory written in a newer format revision than this toolkit reads."""
    path = directory / FORMAT
    if not path.is_file():
        return  # revision 0
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        revision, writer = int(record["format_revision"]), str(record.get("written_by", "?"))
    except (OSError, ValueError, KeyError, TypeError):
        raise ModelFileError(f"{path}: damaged") from None
    if revision > FORMAT_REVISION:
        raise ModelFileError(
            f"{directory}: written by {writer} in model format revision {revision}; this seq2seqkit "
            f"({__version__}) reads revisions up to {FORMAT_REVISION}: pip install --upgrade seq2seqkit"
        )


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
    check_format(directory)


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(name.encode("utf-8"))
        h.update(tensors[name].detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def write_tensors(
    path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> None:
    """Save tensors atomically, with the SHA-256 of their contents in the file's header. Files
    hold CPU tensors whichever device they come from, so a model moves between machines."""
    tensors = {name: t.detach().cpu().contiguous() for name, t in tensors.items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={**(metadata or {}), "sha256": _digest(tensors)})
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def read_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and header metadata of a safetensors file whose checksum is verified."""
    if not path.is_file():
        raise ModelFileError(f"{path}: missing")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ModelFileError(
            f"{path}: damaged or not a safetensors file ({str(err).splitlines()[0]})"
        ) from None
    if "sha256" not in metadata:
        raise ModelFileError(f"{path}: no checksum in its header; not written by this toolkit")
    if _digest(tensors) != metadata["sha256"]:
        raise ModelFileError(f"{path}: damaged or altered (checksum mismatch)")
    return tensors, metadata


def save_weights(path: Path, model: torch.nn.Module) -> None:
    """The model's parameters; a tied weight is stored once and recorded as an alias."""
    unique: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[int, str] = {}
    for name, tensor in model.state_dict().items():
        if tensor.data_ptr() in seen:
            aliases[name] = seen[tensor.data_ptr()]
        else:
            seen[tensor.data_ptr()] = name
            unique[name] = tensor
    write_tensors(path, unique, {"aliases": json.dumps(aliases)})


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """A weights file's tensors by parameter name, tied weights under each of their names."""
    tensors, metadata = read_tensors(path)
    for alias, name in json.loads(metadata.get("aliases", "{}")).items():
        tensors[alias] = tensors[name]
    return tensors


def average_weights(paths: list[Path]) -> dict[str, torch.Tensor]:
    """The element-wise mean of several weights files of one model (checkpoint averaging)."""
    total = {name: tensor.double() for name, tensor in read_weights(paths[0]).items()}
    for path in paths[1:]:
        for name, tensor in read_weights(path).items():
            total[name] += tensor.double()
    return {name: (tensor / len(paths)).float() for name, tensor in total.items()}


def load_weights(path: Path, model: torch.nn.Module) -> None:
    tensors = read_weights(path)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong_shape = [n for n in expected if n in tensors and tensors[n].shape != expected[n].shape]
    problem = (
        f"{missing[0]!r} missing"
        if missing
        else f"{unexpected[0]!r} unexpected"
        if unexpected
        else f"{wrong_shape[0]!r} has shape {tuple(tensors[wrong_shape[0]].shape)}"
        if wrong_shape
        else None
    )
    if problem:
        raise ModelFileError(f"{path}: weights do not match the configured model ({problem})")
    model.load_state_dict(tensors)


def write_checksums(directory: Path, names: list[str]) -> None:
    sums = {name: hashlib.sha256((directory / name).read_bytes()).hexdigest() for name in names}
    atomic_write(directory / CHECKSUMS, json.dumps(sums, indent=1).encode("utf-8"))


def verify_checksums(directory: Path) -> None:
    """Every file listed in checksums.json exists and has its recorded SHA-256."""
    path = directory / CHECKSUMS
    try:
        sums = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFileError(f"{path}: missing; not a complete model directory") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ModelFileError(f"{path}: damaged") from None
    for name, digest in sums.items():
        file = directory / name
        if not file.is_file():
            raise ModelFileError(f"{file}: missing from the model directory")
        if hashlib.sha256(file.read_bytes()).hexdigest() != digest:
            raise ModelFileError(f"{file}: damaged or altered (checksum mismatch)")


def save_training_state(
    directory: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    state: dict[str, Any],
    rng: dict[str, torch.Tensor] | None = None,
) -> None:
    """Everything needed to resume exactly, into ``directory``: weights, optimizer moments and the
    random generators' states (safetensors; by default this process's torch generator as
    ``torch``), and a JSON state (step, data position, schedule)."""
    directory.mkdir(parents=True, exist_ok=True)
    save_weights(directory / WEIGHTS, model)
    opt = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, param_state in opt["state"].items():
        scalars[str(index)] = {}
        for key, value in param_state.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{key}"] = value
            else:
                scalars[str(index)][key] = value
    for name, value in (rng if rng is not None else {"torch": torch.get_rng_state()}).items():
        tensors[f"rng.{name}"] = value
    write_tensors(directory / "optimizer.safetensors", tensors)
    payload = {**state, "param_groups": opt["param_groups"], "optimizer_scalars": scalars}
    atomic_write(directory / "state.json", json.dumps(payload, indent=1).encode("utf-8"))


def load_training_state(
    directory: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> dict[str, Any]:
    """Restore the weights and optimizer that ``save_training_state`` wrote; returns its JSON
    state, with the saved random states under ``rng`` (by name, as saved)."""
    for name in ("state.json", "optimizer.safetensors", WEIGHTS):
        if not (directory / name).is_file():
            raise ModelFileError(f"{directory / name}: missing; cannot resume")
    try:
        payload = json.loads((directory / "state.json").read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{directory / 'state.json'}: damaged ({type(err).__name__})") from None
    tensors, _ = read_tensors(directory / "optimizer.safetensors")
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
    payload["rng"] = {name[4:]: value for name, value in tensors.items() if name.startswith("rng.")}
    return payload


def save_checkpoint(
    out: Path,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    state: dict[str, Any],
    rng: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write out/checkpoints/step-N completely, then point ``latest`` at it, then drop older ones."""
    root = out / CHECKPOINTS
    name = f"step-{step:09d}"
    target = root / name
    shutil.rmtree(target, ignore_errors=True)  # a leftover of a crash while writing this step
    save_training_state(target, model, optimizer, state, rng)
    atomic_write(root / "latest", name.encode("utf-8"))
    for old in root.glob("step-*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return target


def latest_checkpoint(out: Path) -> Path | None:
    """The newest complete checkpoint directory of a model directory, or None."""
    pointer = out / CHECKPOINTS / "latest"
    if not pointer.is_file():
        return None
    return out / CHECKPOINTS / pointer.read_text(encoding="utf-8").strip()
