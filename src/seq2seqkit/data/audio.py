"""Audio in: reading a file (or taking an array), resampling, and log-mel filterbank frames.

Reading is soundfile's (WAV, FLAC, OGG; the first channel of a multi-channel file), resampling
soxr's, and the features Kaldi's 80-bin log-mel filterbank (25 ms windows every 10 ms) through
kaldi-native-fbank: no hand-written signal processing. ``AudioFeaturizer`` is the source
featurizer of a speech model: path or waveform -> (frames, bins) float tensor, normalised with
mean and variance computed on the training set (kept in the model directory as JSON) or per
utterance.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple

import numpy as np
import torch

from seq2seqkit import extras
from seq2seqkit.errors import DataError, ModelFileError

if TYPE_CHECKING:
    from seq2seqkit.data.featurizers import Encoded

Normalization = Literal["global", "utterance", "none"]


class Waveform(NamedTuple):
    """Samples (float, mono, in [-1, 1]) at ``sample_rate`` Hz: an input given as an array."""

    samples: np.ndarray
    sample_rate: int


# what a speech model reads: a path to an audio file, or samples in memory
AudioInput = str | Path | Waveform


def audio_info(path: Path) -> str | None:
    """What is wrong with the audio file at ``path`` (missing, unreadable, not audio, empty), or
    None; reads the header only (a manifest is checked before any training starts)."""
    soundfile = extras.load("speech", "soundfile")

    if not path.is_file():
        return f"{path}: no such audio file"
    try:
        info = soundfile.info(str(path))
    except (RuntimeError, OSError) as err:  # soundfile.LibsndfileError is a RuntimeError
        return f"{path}: not a readable audio file ({_reason(err)})"
    return f"{path}: the audio file holds no samples" if info.frames == 0 else None


def read_audio(source: AudioInput, sample_rate: int) -> np.ndarray:
    """Mono float32 samples of ``source`` at ``sample_rate`` Hz (resampled if needed)."""
    if isinstance(source, Waveform):
        samples, rate, name = np.asarray(source.samples, dtype=np.float32), source.sample_rate, "waveform"
    else:
        soundfile = extras.load("speech", "soundfile")
        name = str(source)
        problem = audio_info(Path(source))
        if problem is not None:
            raise DataError(problem)
        try:
            samples, rate = soundfile.read(name, dtype="float32", always_2d=True)
        except (RuntimeError, OSError) as err:
            raise DataError(f"{name}: cannot read the audio ({_reason(err)})") from None
        samples = samples[:, 0]
    if samples.ndim != 1 or samples.size == 0 or not np.isfinite(samples).all():
        raise DataError(f"{name}: audio must be a non-empty 1-D array of finite samples")
    if rate != sample_rate:
        soxr = extras.load("speech", "soxr")
        samples = soxr.resample(samples, rate, sample_rate).astype(np.float32)
    return samples


def log_mel(samples: np.ndarray, sample_rate: int, bins: int, frame_ms: float, shift_ms: float) -> np.ndarray:
    """(frames, bins) Kaldi log-mel filterbank of float samples in [-1, 1] (no dither: the same
    audio gives the same features)."""
    knf = extras.load("speech", "kaldi_native_fbank")
    options = knf.FbankOptions()
    options.frame_opts.samp_freq = sample_rate
    options.frame_opts.frame_length_ms = frame_ms
    options.frame_opts.frame_shift_ms = shift_ms
    options.frame_opts.dither = 0.0
    options.mel_opts.num_bins = bins
    fbank = knf.OnlineFbank(options)
    fbank.accept_waveform(sample_rate, samples * 32768.0)  # Kaldi reads 16-bit sample values
    fbank.input_finished()
    frames = [fbank.get_frame(i) for i in range(fbank.num_frames_ready)]
    return np.stack(frames).astype(np.float32) if frames else np.zeros((0, bins), np.float32)


class AudioFeaturizer:
    """Audio -> normalised log-mel frames, one label per frame (its time, for pictures)."""

    vocab = None  # no source tokens

    def __init__(
        self,
        sample_rate: int = 16000,
        bins: int = 80,
        frame_ms: float = 25.0,
        shift_ms: float = 10.0,
        normalization: Normalization = "global",
        stats: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        self.sample_rate, self.bins, self.frame_ms, self.shift_ms = sample_rate, bins, frame_ms, shift_ms
        self.normalization = normalization
        self.stats = stats  # global (mean, std) per bin
        self.speed = 1.0  # other than 1 only in training, for speed perturbation (``at_speed``)

    @property
    def input_size(self) -> int:
        """Features per frame (what the frontend is sized by)."""
        return self.bins

    def frames(self, source: AudioInput) -> np.ndarray:
        """Log-mel frames of ``source`` before normalisation, played at ``self.speed`` (tempo and
        pitch together, as Ko et al., 2015: 1.1 is 1/1.1 as long)."""
        samples = read_audio(source, self.sample_rate)
        if self.speed != 1.0:  # the samples as if recorded at speed x the rate, back at the rate
            soxr = extras.load("speech", "soxr")
            samples = soxr.resample(samples, self.sample_rate * self.speed, self.sample_rate).astype(
                np.float32
            )
        frames = log_mel(samples, self.sample_rate, self.bins, self.frame_ms, self.shift_ms)
        if not len(frames):
            raise DataError(f"{_name(source)}: shorter than one {self.frame_ms:g} ms frame")
        return frames

    def fit(self, sources: Iterable[AudioInput]) -> None:
        """Global mean and standard deviation per bin over all frames of ``sources`` (the training set)."""
        count, total, squares = 0, np.zeros(self.bins), np.zeros(self.bins)
        for source in sources:
            frames = self.frames(source).astype(np.float64)
            count += len(frames)
            total += frames.sum(0)
            squares += (frames**2).sum(0)
        mean = total / max(count, 1)
        std = np.sqrt(np.maximum(squares / max(count, 1) - mean**2, 1e-10))
        self.stats = (mean.astype(np.float32), std.astype(np.float32))

    def encode(self, source: AudioInput) -> Encoded:  # type: ignore[override]
        from seq2seqkit.data.featurizers import Encoded

        frames = self.frames(source)
        if self.normalization == "utterance":
            frames = (frames - frames.mean(0)) / np.maximum(frames.std(0), 1e-5)
        elif self.normalization == "global":
            assert self.stats is not None, "global normalization needs fit() on the training audio"
            frames = (frames - self.stats[0]) / self.stats[1]
        labels = [f"{i * self.shift_ms / 1000:.2f}s" for i in range(len(frames))]
        return Encoded(torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32)), labels)

    def at_speed(self, speed: float) -> AudioFeaturizer:
        """This featurizer (the same statistics), playing its audio at ``speed``."""
        featurizer = copy.copy(self)
        featurizer.speed = speed
        return featurizer

    def files(self, prefix: str) -> dict[str, bytes]:
        """``{prefix}_cmvn.json``: the global mean and standard deviation per bin."""
        if self.stats is None:
            return {}
        stats = {"mean": self.stats[0].tolist(), "std": self.stats[1].tolist()}
        return {f"{prefix}_cmvn.json": json.dumps(stats).encode("utf-8")}

    def load_statistics(self, directory: Path, prefix: str) -> AudioFeaturizer:
        """This featurizer with the global statistics ``files(prefix)`` wrote into ``directory``."""
        if self.normalization != "global":
            return self
        path = directory / f"{prefix}_cmvn.json"
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            mean, std = (np.asarray(raw[key], dtype=np.float32) for key in ("mean", "std"))
        except FileNotFoundError:
            raise ModelFileError(f"{path}: missing from the model directory") from None
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ModelFileError(f"{path}: damaged normalisation statistics ({err})") from None
        if mean.shape != (self.bins,) or std.shape != (self.bins,) or not (std > 0).all():
            raise ModelFileError(f"{path}: expected {self.bins} means and positive deviations")
        self.stats = (mean, std)
        return self


def _reason(err: Exception) -> str:
    """libsndfile's reason, without the "Error opening 'PATH': " that soundfile puts before it."""
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return text.split("': ", 1)[-1]


def _name(source: AudioInput) -> str:
    return "waveform" if isinstance(source, Waveform) else str(source)
