"""Decoding speed and quality of an exported model without PyTorch, against the package's own
PyTorch float32 generate measured in the same run: ONNX float32 and int8 graphs over onnxruntime,
greedy and beam 5, on one split of the model's data.

    flock /tmp/cpu.lock .venv/bin/python bench/onnx_decode.py runs/g2p --split test
    flock /tmp/cpu.lock .venv/bin/python bench/onnx_decode.py runs/asr-an4-transformer --split valid \
        --lm runs/lm-an4 --lm-weight 0.5     # speech, a character LM fused into both decoders

Prints, per decoder and beam: sentences/s (the median of --repeats decodes of the whole split), the
spread of those decodes' times (slowest / fastest - 1: high when something else used the CPU), the
ratio to PyTorch at the same beam, the task's metrics, and how many output strings are identical
to PyTorch's. The model is exported (with --quantize int8) into a temporary directory first.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

import seq2seqkit
from seq2seqkit.evaluation import score, segments_of
from seq2seqkit.export import runtime
from seq2seqkit.export.onnx import export_onnx
from seq2seqkit.tasks import read_split, task_of

Decode = Callable[[list[str], int], list[str]]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", type=Path, help="a trained model directory")
    parser.add_argument("--split", choices=["valid", "test"], default="test")
    parser.add_argument("--limit", type=int, default=0, help="first N segments only (0 = all)")
    parser.add_argument("--repeats", type=int, default=3, help="decodes per measurement (median)")
    parser.add_argument("--threads", type=int, default=2, help="threads for torch and onnxruntime")
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--lm", help="a language model directory fused into the search (decoding.lm)")
    parser.add_argument("--lm-weight", type=float, default=0.3, help="its weight (decoding.lm_weight)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    pipeline = seq2seqkit.load(args.model)
    decoding = {"lm": args.lm, "lm_weight": args.lm_weight} if args.lm else {}
    if decoding:
        pipeline.set_decoding(**decoding)
    task = task_of(pipeline.config)
    segments = segments_of(read_split(pipeline.config, args.split), task.group_references)
    if args.limit:
        segments = segments[: args.limit]
    sources = [s.source for s in segments]
    export_dir = Path(tempfile.mkdtemp(prefix="onnx-bench-"))
    start = time.perf_counter()
    export_onnx(args.model, export_dir, quantize="int8", decoding=decoding)
    seconds = time.perf_counter() - start
    print(f"{args.model}: {args.split} split, {len(sources)} segments; export {seconds:.1f} s")
    onnx_float = runtime.OnnxModel(export_dir, threads=args.threads)
    onnx_int8 = runtime.OnnxModel(export_dir, int8=True, threads=args.threads)
    decoders: dict[str, Decode] = {
        "pytorch float32": lambda texts, beam: [o.text for o in pipeline.generate(texts, beam=beam)],
        "onnx float32": lambda texts, beam: [o.text for o in onnx_float.generate(texts, beam=beam)],
        "onnx int8": lambda texts, beam: [o.text for o in onnx_int8.generate(texts, beam=beam)],
    }
    columns = ("beam", 4), ("sent/s", 8), ("spread", 6), ("x torch", 7), ("identical", 15)
    print(f"{'decoder':16s} " + " ".join(f"{name:>{width}s}" for name, width in columns) + "  metrics")
    for beam in args.beams:
        baseline: tuple[float, list[str]] | None = None
        for name, decode in decoders.items():
            times, outputs = _measure(decode, sources, beam, args.repeats)
            seconds = statistics.median(times)
            baseline = baseline or (seconds, outputs)
            same = sum(a == b for a, b in zip(outputs, baseline[1], strict=True))
            metrics = "  ".join(f"{k} {v:.2f}" for k, v in score(task, outputs, segments).items())
            print(
                f"{name:16s} {beam:4d} {len(sources) / seconds:8.1f} {max(times) / min(times) - 1:6.0%}"
                f" {baseline[0] / seconds:7.2f}"
                f"  {same:6d}/{len(sources):<6d}  {metrics}",
                flush=True,
            )


def _measure(decode: Decode, sources: list[str], beam: int, repeats: int) -> tuple[list[float], list[str]]:
    """The seconds of each of ``repeats`` decodes of ``sources``, and the outputs."""
    times = []
    outputs: list[str] = []
    for _ in range(repeats):
        start = time.perf_counter()
        outputs = decode(sources, beam)
        times.append(time.perf_counter() - start)
    return times, outputs


if __name__ == "__main__":
    main()
