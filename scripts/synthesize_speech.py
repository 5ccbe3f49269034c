#!/usr/bin/env python3
"""Synthesize a speech-recognition corpus from a text file with espeak-ng.

Each non-empty line of TEXT_FILE becomes one utterance (``--copies`` of them): a voice, a speed
and a pitch are drawn at random, espeak-ng speaks the line, the audio is resampled to
``--sample-rate``, mixed to mono, white Gaussian noise is added at ``--noise-db`` dB SNR, and the
result is written as 16-bit PCM WAV::

    OUT_DIR/wav/000000.wav, 000001.wav, ...
    OUT_DIR/manifest.tsv     wav/000000.wav<TAB>transcript            (paths relative to OUT_DIR)
    OUT_DIR/manifest.jsonl   {"audio_filepath": "wav/000000.wav", "text": ..., "duration": 1.23}

The transcript is the line with surrounding whitespace stripped and inner runs of whitespace
(tabs included, which would break the TSV) collapsed to one space. Synthetic speech of a few
robotic voices is for pre-training or a first stage of a recipe, not a substitute for real speech.

Usage::

    python scripts/synthesize_speech.py TEXT_FILE OUT_DIR [--voices en-us,en-gb,...]
        [--speeds 140,170,200] [--pitches 35,50,65] [--noise-db 20 | --noise-db none]
        [--copies 1] [--seed 1] [--sample-rate 16000] [--max-lines N]

Voices are espeak-ng names (``espeak-ng --voices=en`` lists them); a ``+variant`` suffix picks
a speaker variant, e.g. ``en-us+f3`` (``espeak-ng --voices=variant``). The same arguments and
seed give byte-identical files. Needs ``apt-get install espeak-ng`` and the pip packages
soundfile and soxr. Errors (no espeak-ng, no text, unknown voice) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from tqdm import tqdm

# Standard espeak-ng English voices (no MBROLA data needed) and two female variants for spread.
DEFAULT_VOICES = "en-us,en-us+f3,en-gb,en-gb-x-rp,en-gb-scotland,en-029+f2"
MIN_SPEED = 80  # words per minute: espeak's documented lower limit
EXIT_ERROR = 2  # the same code argparse uses for a bad command line


class SynthesisError(Exception):
    """A problem the user can fix; main() prints its message on one line and exits 2."""


@dataclass(frozen=True)
class Setting:
    """How one utterance is spoken: espeak-ng's ``-v``, ``-s`` (words per minute) and ``-p``."""

    voice: str
    speed: int
    pitch: int


def _names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return names


def _ints(low: int, high: int | None) -> Callable[[str], list[int]]:
    """An argparse type: comma-separated integers, each in [low, high]."""

    def parse(text: str) -> list[int]:
        try:
            values = [int(name) for name in _names(text)]
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"expected comma-separated integers: {text!r}") from error
        bad = [v for v in values if v < low or (high is not None and v > high)]
        if bad:
            upper = "" if high is None else f" and at most {high}"
            raise argparse.ArgumentTypeError(f"values must be at least {low}{upper}: {bad}")
        return values

    return parse


def _noise_db(text: str) -> float | None:
    if text.strip().lower() == "none":
        return None
    try:
        return float(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected a number of dB or 'none': {text!r}") from error


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Synthesize a speech-recognition corpus (WAV + TSV/JSONL manifests) with espeak-ng.",
        epilog="Example: python scripts/synthesize_speech.py lines.txt data/tts --copies 2 --max-lines 1000",
    )
    parser.add_argument(
        "text_file", type=Path, help="UTF-8 text, one utterance per line (empty lines skipped)"
    )
    parser.add_argument("out_dir", type=Path, help="written: wav/NNNNNN.wav, manifest.tsv, manifest.jsonl")
    parser.add_argument("--voices", type=_names, default=_names(DEFAULT_VOICES), help=f"[{DEFAULT_VOICES}]")
    parser.add_argument(
        "--speeds", type=_ints(MIN_SPEED, None), default=[140, 170, 200], help="wpm [140,170,200]"
    )
    parser.add_argument("--pitches", type=_ints(0, 99), default=[35, 50, 65], help="0-99 [35,50,65]")
    parser.add_argument(
        "--noise-db", type=_noise_db, default=20.0, help="SNR of added white noise in dB; 'none': clean [20]"
    )
    parser.add_argument(
        "--copies", type=_positive, default=1, help="utterances per line, each drawn anew [1]"
    )
    parser.add_argument("--seed", type=int, default=1, help="seeds the voice draws and the noise [1]")
    parser.add_argument("--sample-rate", type=_positive, default=16000, help="Hz [16000]")
    parser.add_argument(
        "--max-lines", type=_positive, default=None, help="use only the first N non-empty lines"
    )
    return parser.parse_args(argv)


def read_lines(path: Path, max_lines: int | None) -> tuple[list[str], int]:
    """The transcripts of the first ``max_lines`` non-empty lines, and how many empty lines were skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SynthesisError(f"text file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise SynthesisError(f"cannot read {path}: {error}") from None
    lines, skipped = [], 0
    for raw in text.splitlines():
        if max_lines is not None and len(lines) == max_lines:
            break
        line = " ".join(raw.split())
        if line:
            lines.append(line)
        else:
            skipped += 1
    if not lines:
        raise SynthesisError(f"text file has no non-empty lines: {path}")
    return lines, skipped


def find_espeak() -> str:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise SynthesisError("espeak-ng not found on PATH; install it with: apt-get install espeak-ng")
    return espeak


def speak(espeak: str, text: str, setting: Setting, wav_path: Path) -> None:
    """Run espeak-ng on ``text`` into ``wav_path``; the text is one argv item, never shell-parsed."""
    command = [espeak, "-v", setting.voice, "-s", str(setting.speed), "-p", str(setting.pitch)]
    # "--" ends the options, so a line starting with "-" is spoken rather than parsed as a flag.
    command += ["-w", str(wav_path), "--", text]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or [f"exit status {result.returncode}"]
        raise SynthesisError(f"espeak-ng failed with voice {setting.voice!r}: {lines[0]}")


def check_voices(espeak: str, voices: list[str], wav_path: Path) -> None:
    """Speak one word with each voice, so a misspelled voice fails now rather than hours in."""
    for voice in voices:
        speak(espeak, "test", Setting(voice, 175, 50), wav_path)


def load_mono(wav_path: Path, sample_rate: int) -> np.ndarray:
    """The WAV as mono float32 at ``sample_rate``: shape ``(samples,)``, values in [-1, 1]."""
    audio, rate = sf.read(wav_path, dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    if rate != sample_rate:
        mono = soxr.resample(mono, rate, sample_rate)
    return np.asarray(mono, dtype=np.float32)


def add_noise(audio: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """``audio`` plus white Gaussian noise whose power is the utterance's mean power over 10^(snr/10).

    The power is averaged over the whole file, espeak's leading and trailing silence included.
    """
    power = float(np.mean(audio.astype(np.float64) ** 2))
    noise = rng.standard_normal(audio.shape) * np.sqrt(power / 10 ** (snr_db / 10))
    # Clip: a float beyond [-1, 1] would wrap around when written as 16-bit PCM.
    return np.clip(audio + noise, -1.0, 1.0).astype(np.float32)


def draw_setting(rng: random.Random, args: argparse.Namespace) -> Setting:
    return Setting(rng.choice(args.voices), rng.choice(args.speeds), rng.choice(args.pitches))


def synthesize(args: argparse.Namespace, lines: list[str], espeak: str, scratch: Path) -> float:
    """Write the WAVs and both manifests under ``args.out_dir``; return the total seconds of audio."""
    # Two generators: the voice draws do not depend on whether noise is on, so --noise-db none
    # with the same seed gives the same utterances without the noise.
    choices = random.Random(args.seed)
    noise_rng = np.random.default_rng(args.seed)
    wav_dir = args.out_dir / "wav"
    wav_dir.mkdir(parents=True, exist_ok=True)
    tmp_wav = scratch / "espeak.wav"
    total_seconds = 0.0
    jobs = [line for line in lines for _ in range(args.copies)]
    with (
        open(args.out_dir / "manifest.tsv", "w", encoding="utf-8") as tsv,
        open(args.out_dir / "manifest.jsonl", "w", encoding="utf-8") as jsonl,
    ):
        for index, text in enumerate(tqdm(jobs, desc="synthesizing", unit="utt")):
            speak(espeak, text, draw_setting(choices, args), tmp_wav)
            audio = load_mono(tmp_wav, args.sample_rate)
            if args.noise_db is not None:
                audio = add_noise(audio, args.noise_db, noise_rng)
            relative = f"wav/{index:06d}.wav"
            sf.write(args.out_dir / relative, audio, args.sample_rate, subtype="PCM_16")
            duration = len(audio) / args.sample_rate
            total_seconds += duration
            tsv.write(f"{relative}\t{text}\n")
            record = {"audio_filepath": relative, "text": text, "duration": round(duration, 6)}
            jsonl.write(json.dumps(record, ensure_ascii=False) + "\n")
    return total_seconds


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        lines, skipped = read_lines(args.text_file, args.max_lines)
        espeak = find_espeak()
        with tempfile.TemporaryDirectory(prefix="synthesize_speech_") as scratch:
            check_voices(espeak, args.voices, Path(scratch) / "espeak.wav")
            seconds = synthesize(args, lines, espeak, Path(scratch))
    except SynthesisError as error:
        print(f"synthesize_speech: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    count = len(lines) * args.copies
    print(
        f"synthesize_speech: {count} utterances, {seconds / 3600:.3f} hours, in {args.out_dir}"
        f" (skipped {skipped} empty lines)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
