"""Speech recognition speed on this machine: training throughput in audio frames per second, and
decoding speed as seconds of audio transcribed per second of compute (the inverse real-time
factor; above 1 is faster than real time) for each decoding method, with its WER and CER.

    flock /tmp/cpu.lock .venv/bin/python bench/asr_speed.py runs/asr-an4

Training: --steps optimizer steps of the model's own config (a fresh model, the recipe's
batches of AN4 training audio, bfloat16 where the CPU has it), after 3 warm-up steps; the
median of --repeats timings. Decoding: the model's valid split from the audio files (reading and
features included), the median of --repeats decodes per method. Ratios compare each method with
CTC greedy decoding in the same run.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

import soundfile
import torch

import seq2seqkit
from seq2seqkit.build import build_loss, build_model
from seq2seqkit.data.batching import collate, token_batches
from seq2seqkit.device import autocast_dtype
from seq2seqkit.evaluation import score, segments_of
from seq2seqkit.tasks import read_split, task_of

METHODS = [("ctc_greedy", 1), ("attention", 1), ("attention", 5), ("joint", 1), ("joint", 5)]


def training_frames_per_second(pipeline: seq2seqkit.Pipeline, steps: int, repeats: int) -> float:
    """Input frames (10 ms each) trained per second by a fresh model of the same config."""
    config = pipeline.config
    pairs = read_split(config, "train")
    features = [pipeline.source.encode(p.src).features for p in pairs]
    targets = [pipeline.target.ids(p.tgt) for p in pairs]
    batches = token_batches(
        [len(f) for f in features], [len(t) for t in targets], config.training.batch_tokens, random.Random(1)
    )
    model = build_model(config.model, pipeline.source.input_size, len(pipeline.target.vocab)).train()
    loss_fn = build_loss(model, ctc_weight=config.model.ctc_weight)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.training.lr)
    dtype = autocast_dtype(torch.device("cpu"), config.training.precision, training=True)

    def step(indices: list[int]) -> int:
        batch = collate([features[i] for i in indices], [targets[i] for i in indices], indices)
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            loss = loss_fn(model(batch.src, batch.src_lengths, batch.tgt_in), batch, 0.1)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return int(batch.src_lengths.sum())

    for indices in batches[:3]:
        step(indices)
    rates = []
    for repeat in range(repeats):
        chosen = [batches[(repeat * steps + k) % len(batches)] for k in range(steps)]
        start = time.perf_counter()
        frames = sum(step(indices) for indices in chosen)
        rates.append(frames / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", type=Path, help="a trained speech model directory")
    parser.add_argument("--steps", type=int, default=20, help="training steps per timing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ctc-weight", type=float, help="joint decoding's CTC weight (default: the model's)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    pipeline = seq2seqkit.load(args.model)
    if args.ctc_weight is not None:
        pipeline.set_decoding(ctc_weight=args.ctc_weight)
    task = task_of(pipeline.config)
    frames_per_s = training_frames_per_second(pipeline, args.steps, args.repeats)
    print(f"training: {frames_per_s:,.0f} audio frames/s = {frames_per_s / 100:.1f} s of audio per second")

    segments = segments_of(read_split(pipeline.config, "valid"), False)
    paths = [s.source for s in segments]
    audio_seconds = sum(soundfile.info(p).duration for p in paths)
    print(f"decoding: {len(paths)} valid utterances, {audio_seconds:.1f} s of audio, {args.threads} threads")
    print("method\tbeam\tx real time\tvs CTC greedy\tspread\tWER\tCER")
    baseline = None
    for method, beam in METHODS:
        pipeline.set_decoding(method=method)
        times, outputs = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            outputs = [o.text for o in pipeline.generate(paths, beam=beam)]
            times.append(time.perf_counter() - start)
        speed = audio_seconds / statistics.median(times)
        baseline = baseline or speed
        scores = score(task, outputs, segments)
        print(
            f"{method}\t{beam}\t{speed:.1f}\t{speed / baseline:.2f}\t{max(times) / min(times) - 1:.0%}"
            f"\t{scores['WER']:.2f}\t{scores['CER']:.2f}"
        )


if __name__ == "__main__":
    main()
