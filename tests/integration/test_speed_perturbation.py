"""Speed perturbation (data.audio.speed_perturbation): each epoch plays each training utterance at
a seeded speed; frames counted after perturbation; resuming continues exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

soundfile = pytest.importorskip("soundfile")
pytest.importorskip("kaldi_native_fbank")

import seq2seqkit  # noqa: E402
from seq2seqkit import checkpoint  # noqa: E402
from seq2seqkit.build import build_featurizers, model_for  # noqa: E402
from seq2seqkit.data.audio import AudioFeaturizer, Waveform  # noqa: E402
from seq2seqkit.errors import ConfigError  # noqa: E402
from seq2seqkit.pipeline import Pipeline  # noqa: E402
from seq2seqkit.tasks import task_config, task_of  # noqa: E402
from seq2seqkit.workflow import _encode_training_data, _read_splits  # noqa: E402

SPEEDS = [0.9, 1.0, 1.1]


def write_manifest(directory: Path) -> Path:
    """Tones of 0.2-0.5 s, a letter per pitch."""
    (directory / "wav").mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (letter, pitch) in enumerate([("A", 400.0), ("B", 900.0), ("C", 1800.0)] * 6):
        t = np.arange(3200 + 320 * (i % 10)) / 16000
        soundfile.write(str(directory / "wav" / f"{i}.wav"), 0.4 * np.sin(2 * np.pi * pitch * t), 16000)
        lines.append(f"wav/{i}.wav\t{letter}\n")
    (directory / "manifest.tsv").write_text("".join(lines))
    return directory / "manifest.tsv"


def raw_config(directory: Path, max_steps: int, speeds: list[float] = SPEEDS) -> dict[str, Any]:
    manifest = str(write_manifest(directory))
    return {
        "task": "asr",
        "data": {
            "train": manifest, "valid": manifest, "test": manifest, "audio": {"speed_perturbation": speeds},
        },
        "model": {
            "embedding_size": 8, "dropout": 0.1,
            "encoder": {"hidden_size": 8}, "decoder": {"hidden_size": 16},
        },
        "training": {
            "seed": 2, "max_steps": max_steps, "max_minutes": 0, "batch_tokens": 400, "validate_every": 5,
            "precision": "float32", "threads": 1, "evaluate_test": False,
        },
        "decoding": {"beam_size": 1},
    }  # fmt: skip


def test_a_faster_utterance_has_fewer_frames() -> None:
    featurizer = AudioFeaturizer(normalization="utterance")
    one_second = Waveform(np.sin(np.arange(16000) / 5).astype(np.float32) * 0.3, 16000)
    frames = {speed: len(featurizer.at_speed(speed).frames(one_second)) for speed in SPEEDS}
    assert frames[1.0] == 98
    assert abs(frames[0.9] - 98 / 0.9) <= 1 and abs(frames[1.1] - 98 / 1.1) <= 1
    assert len(featurizer.at_speed(1.1).encode(one_second).features) == frames[1.1]


def test_each_epoch_draws_a_speed_per_utterance(tmp_path: Path) -> None:
    config = task_config(raw_config(tmp_path, 5))
    train_pairs = _read_splits(task_of(config), config)[0]
    source, target = build_featurizers(config.data, train_pairs)
    pipeline = Pipeline(config, model_for(config.model, source, target, None), source, target)
    pairs = _encode_training_data(pipeline, train_pairs)
    lengths = [[len(s) for s in pairs.for_epoch(e).src] for e in (0, 1, 0)]
    assert lengths[0] == lengths[2]  # seeded by the epoch
    assert lengths[0] != lengths[1]
    best = [len(s) for s in pairs.src]
    ratios = {round(b / n, 1) for epoch in lengths for b, n in zip(best, epoch, strict=True)}
    assert ratios == {0.9, 1.0, 1.1}  # frames are counted after perturbation
    assert pairs.for_epoch(0).tgt == pairs.tgt  # the transcripts stay


def test_resume_with_speed_perturbation_equals_uninterrupted_training(tmp_path: Path) -> None:
    straight = seq2seqkit.train(task_config(raw_config(tmp_path, 8)), tmp_path / "straight")
    assert "speed perturbation**: 0.9, 1, 1.1" in (straight / "README.md").read_text()
    seq2seqkit.train(task_config(raw_config(tmp_path, 4)), tmp_path / "resumed")
    resumed = seq2seqkit.train(task_config(raw_config(tmp_path, 8)), tmp_path / "resumed", resume=True)
    last = checkpoint.latest_checkpoint(straight), checkpoint.latest_checkpoint(resumed)
    assert last[0] is not None and last[1] is not None
    a, b = load_file(str(last[0] / "model.safetensors")), load_file(str(last[1] / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_speed_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"speeds must lie in \[0.5, 2\]"):
        task_config(raw_config(tmp_path, 5, [0.9, 3.0]))
    text = {"task": "translation", "data": {"audio": {"speed_perturbation": [0.9]}}}
    with pytest.raises(ConfigError, match="needs data.source audio"):
        task_config(text)
