"""The ``seq2seqkit`` command: thin subcommands, each calling one library function.

Errors the user can fix are printed as one line (``seq2seqkit: error: ...``) with exit status 1;
an interrupted training run exits with 130 after saving its checkpoint (0 under torchrun).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seq2seqkit import extras
from seq2seqkit.config import DECODING_METHODS
from seq2seqkit.device import configure_memory
from seq2seqkit.errors import DataError, Seq2SeqError
from seq2seqkit.metrics import METRICS
from seq2seqkit.version import __version__

if TYPE_CHECKING:
    from seq2seqkit.decoding.search import Sampler
    from seq2seqkit.pipeline import Pipeline

EXAMPLES = """examples:
  seq2seqkit recipes
  seq2seqkit train g2p --output runs/g2p
  seq2seqkit train g2p --set training.max_minutes=5 --set model.dropout=0.3
  seq2seqkit train my_pairs.tsv --minutes 10          # the recipe chosen from the data
  echo hello | seq2seqkit generate runs/g2p --beam 5
  seq2seqkit evaluate --hyp out.txt --ref ref.txt --metric bleu --metric chrf
  seq2seqkit evaluate --model runs/g2p --split test
  seq2seqkit serve runs/g2p --port 8000
  seq2seqkit export runs/g2p --format onnx --output g2p-onnx --quantize int8
  seq2seqkit transcribe runs/asr-an4 a.wav b.flac
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    configure_memory()
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("seq2seqkit: interrupted", file=sys.stderr)
        return 130
    except Seq2SeqError as err:
        from seq2seqkit.training.trainer import TrainingInterrupted

        if not isinstance(err, TrainingInterrupted):
            print(f"seq2seqkit: error: {err}", file=sys.stderr)
            return 1
        # under torchrun every process stops together: rank 0 says so, and all exit 0 so that
        # torchrun does not report the saved, resumable run as a failed one
        if os.environ.get("RANK", "0") == "0":
            print(f"seq2seqkit: {err}", file=sys.stderr)
        return 0 if int(os.environ.get("WORLD_SIZE", "1")) > 1 else 130
    except BrokenPipeError:  # e.g. piped into `head`
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seq2seqkit",
        description="Train, run and evaluate sequence-to-sequence models.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_recipes(sub)
    _add_train(sub)
    _add_generate(sub)
    _add_transcribe(sub)
    _add_evaluate(sub)
    _add_analyze(sub)
    _add_serve(sub)
    _add_export(sub)
    return parser


def _add_device(parser: argparse.ArgumentParser, default: str = "auto") -> None:
    parser.add_argument(
        "--device",
        default=default,
        metavar="DEVICE",
        help=f"auto (a GPU when CUDA is available, else the CPU), cpu, cuda or cuda:N (default: {default})",
    )


def _add_recipes(sub: argparse._SubParsersAction) -> None:
    recipes = sub.add_parser(
        "recipes",
        help="list the built-in recipes",
        description="List the built-in recipes (seq2seqkit train NAME), or print one to copy and edit.",
    )
    recipes.add_argument("name", nargs="?", help="print this recipe's YAML")
    recipes.set_defaults(run=_recipes)


def _recipes(args: argparse.Namespace) -> int:
    from seq2seqkit import recipes

    if args.name:
        print(recipes.standalone_text(args.name), end="")
        return 0
    rows = recipes.listing()
    width = max(len(name) for name, _, _ in rows)
    for name, task, description in rows:
        print(f"{name:<{width}}  {task:<13}  {description}")
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser(
        "train",
        help="train a model from a recipe, or from data with a recipe chosen for it",
        description="Train a model from a recipe, or from your pairs: given a data file or folder "
        "(TSV, JSONL, parallel text, a speech manifest) instead of a recipe, it chooses the recipe "
        "from the data, prints each choice with its reason, and writes the recipe into the model "
        "directory. The last line printed is the model directory.",
    )
    train.add_argument(
        "config",
        nargs="+",
        metavar="RECIPE|DATA",
        help="a YAML recipe, a built-in recipe's name (seq2seqkit recipes), or data: a TSV or JSONL "
        "file, a folder holding train.*, or two parallel files STEM.X STEM.Y",
    )
    train.add_argument("--output", type=Path, help="model directory (default: the recipe's output_dir; "
                       "for data, runs/ and the data's name)")  # fmt: skip
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set training.lr=3e-4 (repeatable)",
    )
    train.add_argument("--resume", action="store_true", help="continue the run saved in the model directory")
    train.add_argument(
        "--device",
        metavar="DEVICE",
        help="auto, cpu, cuda or cuda:N (default: the config's training.device); under torchrun each "
        "process takes the GPU of its local rank",
    )
    data = train.add_argument_group("training from data (instead of a recipe)")
    data.add_argument("--minutes", type=float, help="training budget in minutes (data: default 10; "
                      "a recipe: overrides training.max_minutes)")  # fmt: skip
    data.add_argument(
        "--target", help="JSONL: the target field (default: tgt, target, output, answer or summary)"
    )
    data.add_argument(
        "--pair", metavar="SRC-TGT", help="parallel files: which suffix is the source, e.g. en-de"
    )
    data.add_argument("--task", help="the task and its metrics (default: chosen from the data)")
    train.add_argument(
        "--dry-run",
        action="store_true",
        help="print the recipe (and for data, the choices) and the warnings; train nothing",
    )
    train.set_defaults(run=_train)


def _add_generate(sub: argparse._SubParsersAction) -> None:
    gen = sub.add_parser(
        "generate",
        help="generate outputs for inputs, one per line",
        description="Read one input per line (from --input, a pipe, or interactively) and write "
        "one detokenized output per line to stdout. Empty inputs give empty outputs; inputs over "
        "the model's decoding.max_input_len tokens are truncated with a warning. A model with "
        "several source fields (data.src_fields, e.g. question and context) reads one JSON object "
        "per line holding those fields. Several models decode as an ensemble (the mean of their "
        "probabilities; they must share tokenizers and vocabularies).",
    )
    gen.add_argument("model", type=Path, nargs="+", help="model directory written by `seq2seqkit train`")
    gen.add_argument("--input", type=Path, help="input file (default: stdin)")
    gen.add_argument(
        "--beam", type=int, help="beam size (default: the model's decoding.beam_size; 1 = greedy)"
    )
    gen.add_argument(
        "--nbest", type=int, default=1, help="outputs per input, written as INDEX<TAB>SCORE<TAB>TEXT"
    )
    gen.add_argument(
        "--length-penalty", type=float, help="alpha of the length penalty (default: the model's)"
    )
    gen.add_argument("--scores", action="store_true", help="append <TAB>log-probability to each output")
    gen.add_argument(
        "--span-constrained",
        action="store_true",
        help="only outputs that are spans of the input's last field (an answer from its context; "
        "a copying model or one with a shared vocabulary)",
    )
    gen.add_argument(
        "--precision",
        choices=["float32", "bfloat16", "float16", "auto"],
        help="decode in this precision (default: the model's decoding.precision; auto = bfloat16 "
        "where the device computes it natively; float16 on GPUs only)",
    )
    _add_sampling(gen)
    gen.add_argument(
        "--attention-dir",
        type=Path,
        metavar="DIR",
        help="also write one attention heatmap per input, DIR/00001.png, ... (models with attention)",
    )
    _add_method(gen)
    _add_device(gen)
    gen.set_defaults(run=_generate)


def _add_sampling(gen: argparse.ArgumentParser) -> None:
    """generate's options for back-translation: sampling instead of search, and training tags."""
    gen.add_argument(
        "--sample",
        action="store_true",
        help="draw each output token by token from the model's distribution instead of searching "
        "for the best (for back-translation, Edunov et al. 2018); see --top-k, --temperature, --seed",
    )
    gen.add_argument(
        "--top-k", type=int, default=0, help="with --sample: draw from the K most probable tokens (0: all)"
    )
    gen.add_argument("--temperature", type=float, default=1.0, help="with --sample: softmax temperature")
    gen.add_argument("--seed", type=int, default=1, help="with --sample: the random seed")
    gen.add_argument(
        "--tag",
        default="",
        help="put this tag token before each input: one of the model's training tags (data.extra_train), "
        "e.g. <BT> to ask for back-translation-like output",
    )


def _add_method(parser: argparse.ArgumentParser) -> None:
    """The search's options: --method and its CTC weight, and a language model fused into it."""
    parser.add_argument(
        "--method",
        choices=list(DECODING_METHODS),
        help="a model with a CTC head: attention beam search, CTC best path, beam search with CTC "
        "prefix scores (joint), or the beam's n-best rescored with CTC (default: the model's "
        "decoding.method)",
    )
    parser.add_argument(
        "--ctc-weight",
        type=float,
        help="with joint or rescore: w in (1 - w) log p_att + w log p_ctc (default: decoding.ctc_weight)",
    )
    parser.add_argument(
        "--lm",
        type=Path,
        help="shallow fusion: a language model's directory (task language_model, trained on this "
        "model's targets) whose log-probabilities join the search's scores (default: decoding.lm)",
    )
    parser.add_argument(
        "--lm-weight",
        type=float,
        help="the language model's weight: score + W * log p_lm (default: decoding.lm_weight)",
    )


def _search_changes(args: argparse.Namespace) -> dict[str, Any]:
    """The decoding settings that --method, --ctc-weight, --lm and --lm-weight change."""
    changes = {
        "method": args.method,
        "ctc_weight": args.ctc_weight,
        "lm": args.lm and str(args.lm),
        "lm_weight": args.lm_weight,
    }
    return {key: value for key, value in changes.items() if value is not None}


def _set_search(pipeline: Pipeline, args: argparse.Namespace) -> None:
    """--method, --ctc-weight, --lm and --lm-weight over the model's decoding settings."""
    changes = _search_changes(args)
    if changes:
        pipeline.set_decoding(**changes)


def _add_transcribe(sub: argparse._SubParsersAction) -> None:
    transcribe = sub.add_parser(
        "transcribe",
        help="transcribe audio files with a speech model",
        description="Write PATH<TAB>TRANSCRIPT for each audio file (WAV, FLAC, OGG; any sample rate, "
        "the first channel), in order. `seq2seqkit generate MODEL --input LIST` reads one path per line.",
    )
    transcribe.add_argument("model", type=Path, help="speech model directory written by `seq2seqkit train`")
    transcribe.add_argument("audio", nargs="+", help="audio files")
    transcribe.add_argument("--beam", type=int, help="beam size (default: the model's decoding.beam_size)")
    transcribe.add_argument(
        "--attention-dir",
        type=Path,
        metavar="DIR",
        help="also write DIR/00001.png, ...: each file's spectrogram above its attention",
    )
    _add_method(transcribe)
    _add_device(transcribe)
    transcribe.set_defaults(run=_transcribe)


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser(
        "evaluate",
        help="score hypotheses against references, or a model on a data split",
        description="Either --hyp FILE --ref FILE [--ref FILE ...] --metric NAME: score a file of "
        "outputs against one or more reference files; or --model DIR: generate and score in one go "
        "(on --split of the model's data, or on --src FILE against --ref FILE).",
    )
    ev.add_argument("--hyp", type=Path, help="hypotheses, one per line")
    ev.add_argument(
        "--ref", type=Path, action="append", default=[], help="references, line-aligned (repeatable)"
    )
    ev.add_argument(
        "--metric",
        action="append",
        choices=list(METRICS),
        help="metric (repeatable); default: the model's task metrics, or bleu",
    )
    ev.add_argument(
        "--model",
        type=Path,
        action="append",
        help="model directory: generate, then score (repeat it to score an ensemble)",
    )
    ev.add_argument(
        "--split",
        choices=["train", "valid", "test"],
        default="test",
        help="data split of the model's config (train: how closely it fits what it learned from)",
    )
    ev.add_argument("--src", type=Path, help="with --model: source file to generate from instead of --split")
    ev.add_argument("--beam", type=int, help="with --model: beam size")
    _add_method(ev)
    _add_device(ev)
    ev.set_defaults(run=_evaluate)


def _add_analyze(sub: argparse._SubParsersAction) -> None:
    analyze = sub.add_parser("analyze", help="pictures and tables that explain trained models")
    kinds = analyze.add_subparsers(dest="analysis", required=True, metavar="ANALYSIS")
    curves = kinds.add_parser(
        "curves",
        help="validation metric and loss over training steps, as a PNG",
        description="Plot each model directory's validations.jsonl: the validation metric and "
        "loss against training steps, one line per model.",
    )
    curves.add_argument("models", type=Path, nargs="+", help="model directories")
    curves.add_argument("--metric", help="metric to plot (default: the first model's task metric)")
    curves.add_argument(
        "--output", type=Path, default=Path("curves.png"), help="PNG file (default: curves.png)"
    )
    curves.set_defaults(run=_analyze_curves)
    length = kinds.add_parser(
        "length",
        help="the task metric by source-length bucket for several models, as a table and a PNG",
        description="Decode one test set with each model and score it by source length: the "
        "fixed context vector of a no-attention model loses information on long inputs.",
    )
    length.add_argument("models", type=Path, nargs="+", help="model directories")
    length.add_argument(
        "--split", choices=["valid", "test"], default="test", help="split of the first model's data"
    )
    length.add_argument("--src", type=Path, help="source file instead of --split (with --ref)")
    length.add_argument("--ref", type=Path, help="reference file, line-aligned with --src")
    length.add_argument("--beam", type=int, default=1, help="beam size (default 1)")
    length.add_argument("--buckets", type=int, default=5, help="number of length buckets (default 5)")
    length.add_argument(
        "--unit",
        choices=["words", "chars", "seconds"],
        help="length unit (default: seconds for audio, else words)",
    )
    length.add_argument(
        "--output", type=Path, default=Path("length.png"), help="PNG file (default: length.png)"
    )
    _add_device(length)
    length.set_defaults(run=_analyze_length)
    _add_data_size(kinds)


def _add_data_size(kinds: argparse._SubParsersAction) -> None:
    size = kinds.add_parser(
        "data-size",
        help="learning curves: recipes trained on shares of their training pairs, scored on test",
        description="Train each recipe on nested, seeded shares of its training pairs (the same "
        "pairs for every recipe on the same data), each run at the budget given, score each on its "
        "test split with its task's metric, and print the table and draw the metric against "
        "training pairs. Runs go to OUTPUT/RECIPE/FRACTION; run the same command again to go on "
        "after an interruption (finished runs are kept, an interrupted one resumes).",
    )
    size.add_argument("recipes", nargs="+", help="recipe files or built-in recipe names")
    size.add_argument(
        "--fractions", default="0.1,0.25,0.5,1", help="shares of the training pairs (default 0.1,0.25,0.5,1)"
    )
    budget = size.add_mutually_exclusive_group(required=True)
    budget.add_argument("--minutes", type=float, help="wall-clock budget of each run")
    budget.add_argument("--steps", type=int, help="training steps of each run")
    size.add_argument(
        "--output",
        type=Path,
        default=Path("runs/data-size"),
        help="folder of the runs, the table and the PNG",
    )
    size.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value of every recipe (repeatable)",
    )  # fmt: skip
    size.set_defaults(run=_analyze_data_size)


def _add_serve(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser(
        "serve",
        help="serve models over HTTP: a JSON API and a page showing outputs and attention",
        description="Load the models once and serve POST /v1/generate, GET /v1/models, /health, "
        "/ready, /metrics (Prometheus) and a page at / (API docs at /docs). Concurrent requests are "
        "decoded together (dynamic batching). Stop with Ctrl-C or SIGTERM: requests in flight finish.",
    )
    serve.add_argument(
        "models", nargs="+", metavar="[NAME=]MODEL_DIR", help="model directories (named by their folder)"
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine)"
    )
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    _add_device(serve)
    limits = serve.add_argument_group("limits (a request over one gets a 4xx naming the field)")
    limits.add_argument(
        "--max-inputs", type=int, metavar="N", default=64, help="inputs per request (default 64)"
    )
    limits.add_argument(
        "--max-chars", type=int, metavar="N", default=2000, help="characters per input (default 2000)"
    )
    limits.add_argument("--max-beam", type=int, metavar="N", default=16, help="beam size (default 16)")
    limits.add_argument(
        "--max-body-bytes",
        type=int,
        metavar="N",
        default=1_000_000,
        help="request body size (default 1000000)",
    )
    limits.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        default=30.0,
        help="seconds to decode a request before a 504 (default 30)",
    )
    batching = serve.add_argument_group("dynamic batching")
    batching.add_argument(
        "--batch-wait-ms",
        type=float,
        metavar="MS",
        default=5.0,
        help="how long a batch gathers concurrent requests (default 5 ms)",
    )
    batching.add_argument(
        "--batch-tokens",
        type=int,
        metavar="N",
        help="source tokens per batch (default: the model's decoding.batch_tokens)",
    )
    batching.add_argument(
        "--no-batching", action="store_true", help="decode each request alone, one after another"
    )
    serve.set_defaults(run=_serve)


def _add_export(sub: argparse._SubParsersAction) -> None:
    export = sub.add_parser(
        "export",
        help="write a model as ONNX graphs with a runtime that needs no PyTorch",
        description="Write the encoder and the decoder step as ONNX graphs (dynamic batch and length), "
        "the vocabularies, tokenizer models and config beside them, and runtime.py, which runs greedy "
        "and beam search over onnxruntime: python DIR/runtime.py DIR --beam 5 < inputs.txt. The "
        "search options below are written into the export (a fused language model is exported beside "
        "the model, in DIR/lm)",
    )
    export.add_argument("model", type=Path, help="model directory written by `seq2seqkit train`")
    export.add_argument("--format", choices=["onnx"], default="onnx", help="export format (default onnx)")
    export.add_argument("--output", type=Path, required=True, metavar="DIR", help="output directory")
    export.add_argument(
        "--quantize", choices=["int8"], help="also write int8 graphs (onnxruntime dynamic quantization)"
    )
    _add_method(export)
    export.set_defaults(run=_export)


def _export(args: argparse.Namespace) -> int:
    extras.require("onnx")
    from seq2seqkit.export.onnx import export_onnx

    print(export_onnx(args.model, args.output, args.quantize, _search_changes(args)))
    return 0


def _serve(args: argparse.Namespace) -> int:
    for name in ("port", "max_inputs", "max_chars", "max_beam", "max_body_bytes", "batch_tokens"):
        _check_positive(f"--{name.replace('_', '-')}", getattr(args, name))
    if args.timeout <= 0 or args.batch_wait_ms < 0:
        raise Seq2SeqError("--timeout must be positive and --batch-wait-ms at least 0")
    extras.require("serve")
    from seq2seqkit.serve.app import ServeSettings
    from seq2seqkit.serve.schemas import Limits
    from seq2seqkit.serve.server import serve

    limits = Limits(
        max_inputs=args.max_inputs,
        max_chars=args.max_chars,
        max_beam=args.max_beam,
        max_body_bytes=args.max_body_bytes,
        timeout_s=args.timeout,
    )
    settings = ServeSettings(
        limits=limits,
        batching=not args.no_batching,
        batch_wait_ms=args.batch_wait_ms,
        batch_tokens=args.batch_tokens,
    )
    serve(args.models, args.host, args.port, settings, args.device)
    return 0


def _train(args: argparse.Namespace) -> int:
    from seq2seqkit.recipes import is_recipe, load_config, standalone_text
    from seq2seqkit.workflow import train

    if args.minutes is not None and args.minutes <= 0:
        raise Seq2SeqError(f"--minutes must be above 0, got {args.minutes:g}")
    overrides = [*args.overrides, *([f"training.device={args.device}"] if args.device else [])]
    if len(args.config) > 1 or not is_recipe(args.config[0]):
        return _train_on_data(args, overrides)
    for flag in ("target", "pair", "task"):
        if getattr(args, flag) is not None:
            raise Seq2SeqError(f"--{flag} applies to data, not to a recipe (set it in the recipe)")
    if args.minutes is not None:
        overrides.append(f"training.max_minutes={args.minutes}")
    config = load_config(args.config[0], overrides)
    if args.dry_run:
        from seq2seqkit.workflow import dry_run

        print(standalone_text(args.config[0]), end="")
        _print_warnings(dry_run(config))
        return 0
    return _trained(train(config, args.output, resume=args.resume))


def _train_on_data(args: argparse.Namespace, overrides: list[str]) -> int:
    """Train on data with the recipe chosen for it (printed, and written into the model directory),
    or with --resume the one written there before; --dry-run prints the choices and warnings."""
    from seq2seqkit import auto, checkpoint
    from seq2seqkit.config import apply_overrides
    from seq2seqkit.preflight import data_warnings
    from seq2seqkit.recipes import load_config
    from seq2seqkit.tasks import task_of
    from seq2seqkit.workflow import train

    paths = [Path(p) for p in args.config]
    out = args.output or Path("runs") / auto.data_name(paths)
    if args.resume:
        if not (out / "recipe.yaml").is_file():
            raise Seq2SeqError(
                f"{out}: no recipe.yaml to resume from; name the model directory with --output"
            )
        return _trained(train(load_config(out / "recipe.yaml", overrides), out, resume=True))
    if not args.dry_run and checkpoint.latest_checkpoint(out) is not None:
        raise Seq2SeqError(f"{out} already holds a trained model; choose another --output, or --resume it")
    minutes = args.minutes if args.minutes is not None else auto.DEFAULT_MINUTES
    chosen = auto.choose(paths, out, minutes, args.target, args.pair, args.task)
    chosen.recipe = apply_overrides(chosen.recipe, overrides)  # --set goes into the written recipe
    config = chosen.config
    print(chosen.text(), end="", flush=True)
    if args.dry_run:
        _print_warnings(data_warnings(config, task_of(config), chosen.splits))
        return 0
    return _trained(train(load_config(auto.write(chosen, out)), out))


def _print_warnings(warnings: list[str]) -> None:
    for warning in warnings:
        print(f"warning: {warning}")


def _trained(out: Path) -> int:
    if os.environ.get("RANK", "0") == "0":  # under torchrun: once, from rank 0
        print(out)
    return 0


def _check_positive(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise Seq2SeqError(f"{name} must be at least 1, got {value}")


def _input_lines(path: Path | None, fields: Sequence[str] = ()) -> Iterator[str]:
    """Lines of a UTF-8 file, or of stdin when ``path`` is None; with ``fields`` (a model with
    several source fields) each line is a JSON object holding them, joined into one source."""
    from seq2seqkit.data.readers import decode_lines, json_source, read_lines

    name = str(path) if path is not None else "<stdin>"
    lines = read_lines(path) if path is not None else decode_lines(sys.stdin.buffer, name)
    if fields:
        return (json_source(text, fields, f"{name}:{number}") for number, text in lines)
    return (text for _, text in lines)


def _generate(args: argparse.Namespace) -> int:
    _check_positive("--beam", args.beam)
    _check_positive("--nbest", args.nbest)
    if args.length_penalty is not None and args.length_penalty < 0:
        raise Seq2SeqError(f"--length-penalty must be at least 0, got {args.length_penalty}")
    sampler = _sampler(args)
    pipeline = _load(args.model, args.device)
    if args.precision:
        pipeline.set_decoding(precision=args.precision)
    if args.span_constrained:
        pipeline.set_decoding(span_constrained=True)
    _set_search(pipeline, args)
    beam = 1 if sampler else args.beam or pipeline.config.decoding.beam_size
    if args.nbest > beam:
        raise Seq2SeqError(f"--nbest ({args.nbest}) cannot exceed the beam size ({beam})")

    def write(outputs: list, first_index: int) -> None:
        for offset, output in enumerate(outputs):
            if args.nbest > 1:
                for hyp in output.hypotheses:
                    print(f"{first_index + offset}\t{hyp.score:.4f}\t{hyp.text}")
            else:
                print(f"{output.text}\t{output.score:.4f}" if args.scores else output.text)
        sys.stdout.flush()

    generate = functools.partial(
        pipeline.generate,
        beam=beam,
        nbest=args.nbest,
        length_penalty=args.length_penalty,
        copy_gates=args.attention_dir is not None,
        sampler=sampler,
        tag=args.tag,
    )
    fields = pipeline.config.data.src_fields
    reader = pipeline.model.output_kind == "pointer"
    if args.input is None and sys.stdin.isatty():
        print("type an input and press Enter (Ctrl-D to quit)", file=sys.stderr)
        for index, line in enumerate(_input_lines(None, fields)):
            outputs = generate([line])
            write(outputs, index)
            if args.attention_dir is not None:
                _write_attention_maps(outputs, args.attention_dir, first=index + 1, reader=reader)
        return 0
    lines = list(_input_lines(args.input, fields))
    outputs = generate(lines)
    write(outputs, 0)
    if args.attention_dir is not None:
        speech = (pipeline.source, lines) if pipeline.source.vocab is None else None
        _write_attention_maps(outputs, args.attention_dir, speech=speech, reader=reader)
    if pipeline.truncated:
        limit = pipeline.config.decoding.max_input_len
        print(
            f"seq2seqkit: {pipeline.truncated} inputs were truncated to {limit} tokens "
            "(decoding.max_input_len)",
            file=sys.stderr,
        )
    return 0


def _sampler(args: argparse.Namespace) -> Sampler | None:
    """generate's --sample settings, checked; None without --sample."""
    if not args.sample:
        for flag, value, default in (("--top-k", args.top_k, 0), ("--temperature", args.temperature, 1.0)):
            if value != default:
                raise Seq2SeqError(f"{flag} needs --sample")
        return None
    if args.beam not in (None, 1) or args.nbest != 1:
        raise Seq2SeqError("--sample draws one output per input: leave out --beam and --nbest")
    if args.top_k < 0:
        raise Seq2SeqError(f"--top-k must be at least 0 (0: the whole vocabulary), got {args.top_k}")
    if not args.temperature > 0:
        raise Seq2SeqError(f"--temperature must be positive, got {args.temperature}")
    from seq2seqkit.decoding.search import Sampler

    return Sampler(args.top_k, args.temperature, args.seed)


def _load(directories: list[Path], device: str) -> Pipeline:
    """One model, or several as an ensemble."""
    import seq2seqkit

    pipelines = [seq2seqkit.load(directory, device=device) for directory in directories]
    return pipelines[0] if len(pipelines) == 1 else seq2seqkit.ensemble(pipelines)


def _transcribe(args: argparse.Namespace) -> int:
    import seq2seqkit

    _check_positive("--beam", args.beam)
    pipeline = seq2seqkit.load(args.model, device=args.device)
    if pipeline.source.vocab is not None:
        raise Seq2SeqError(f"{args.model}: not a speech model (its inputs are text: use seq2seqkit generate)")
    _set_search(pipeline, args)
    outputs = pipeline.generate(args.audio, beam=args.beam)
    for path, output in zip(args.audio, outputs, strict=True):
        print(f"{path}\t{output.text}")
    if args.attention_dir is not None:
        _write_attention_maps(outputs, args.attention_dir, speech=(pipeline.source, args.audio))
    return 0


def _write_attention_maps(
    outputs: list,
    directory: Path,
    first: int = 1,
    speech: tuple[Any, Sequence[str]] | None = None,
    reader: bool = False,
) -> None:
    """One heatmap per output; for a speech model (``speech``: its audio featurizer and the
    inputs) under the spectrogram the model read; for a pointer ``reader`` its boundaries shaded
    over the paragraph."""
    extras.require("plots")
    from seq2seqkit.plots import attention_heatmap, span_picture, speech_attention

    directory.mkdir(parents=True, exist_ok=True)
    for index, output in enumerate(outputs, start=first):
        best = output.hypotheses[0]
        if best.attention is None:
            if output.source_tokens:
                raise Seq2SeqError("--attention-dir: this model has no attention to show")
            continue  # an empty input has nothing to show
        path = directory / f"{index:05d}.png"
        if reader:
            span_picture(best.attention, output.source_tokens, best.text, path)
        elif speech is not None:
            featurizer, inputs = speech
            frames = featurizer.encode(inputs[index - first]).features
            speech_attention(best.attention, frames, best.tokens, featurizer.shift_ms, path, best.text)
        else:
            attention_heatmap(
                best.attention,
                output.source_tokens,
                best.tokens,
                path,
                title=best.text,
                copy_gate=best.copy_gate,
            )
        print(f"seq2seqkit: attention heatmap: {path}", file=sys.stderr)


def _analyze_curves(args: argparse.Namespace) -> int:
    from seq2seqkit.checkpoint import load_config_from_dir

    extras.require("plots")
    from seq2seqkit.plots import training_curves
    from seq2seqkit.tasks import task_of

    metric = args.metric or task_of(load_config_from_dir(args.models[0])).primary.name
    training_curves(args.models, metric, args.output)
    print(args.output)
    return 0


def _analyze_length(args: argparse.Namespace) -> int:
    import seq2seqkit
    from seq2seqkit.data.readers import read_parallel
    from seq2seqkit.evaluation import evaluate, length_edges, length_of, score_by_length, segments_of

    extras.require("plots")
    from seq2seqkit.plots import length_plot
    from seq2seqkit.recipes import check_corpora
    from seq2seqkit.tasks import read_split, task_of

    _check_positive("--beam", args.beam)
    _check_positive("--buckets", args.buckets)
    names = [path.name for path in args.models]
    if len(set(names)) < len(names):  # e.g. runs/a/model and runs/b/model: label by full path
        names = [str(path) for path in args.models]
    if len(set(names)) < len(names):
        names = [f"{i + 1}: {path}" for i, path in enumerate(args.models)]
    pipelines = {
        name: seq2seqkit.load(path, device=args.device) for name, path in zip(names, args.models, strict=True)
    }
    first = next(iter(pipelines.values()))
    task = task_of(first.config)
    if args.src is not None:
        if args.ref is None:
            raise Seq2SeqError("--src needs --ref")
        pairs = read_parallel(args.src, args.ref)
    else:
        check_corpora(first.config.data)
        pairs = read_split(first.config, args.split)
    if not pairs:
        raise Seq2SeqError("nothing to analyze: the split is empty; use --src and --ref")
    unit = args.unit or ("seconds" if first.source.vocab is None else "words")
    lengths = [length_of(s.source, unit) for s in segments_of(pairs, task.group_references)]
    edges = length_edges(lengths, args.buckets)
    tables = {}
    for name, pipeline in pipelines.items():
        tables[name] = score_by_length(task, evaluate(pipeline, pairs, task, args.beam), edges, unit)
    metric = task.primary.name
    print(f"{metric} by source length ({unit}), beam {args.beam}")
    print("\t".join(["length", "segments", *tables]))
    for row, bucket in enumerate(next(iter(tables.values()))):
        scores = [f"{table[row].score:.2f}" for table in tables.values()]
        print("\t".join([bucket.label, str(bucket.count), *scores]))
    length_plot(tables, metric, unit, args.output)
    print(args.output)
    return 0


def _analyze_data_size(args: argparse.Namespace) -> int:
    from seq2seqkit import data_size

    extras.require("plots")
    from seq2seqkit.plots import data_size_plot

    fractions = data_size.parse_fractions(args.fractions)
    settings = data_size.budget_overrides(args.minutes, args.steps)
    points = data_size.sweep(args.recipes, fractions, settings, args.output, args.overrides)
    table = data_size.table(points)
    print(table)
    (args.output / "data_size.tsv").write_text(table + "\n", encoding="utf-8")
    budget = f"{args.minutes:g} min" if args.minutes is not None else f"{args.steps:,} steps"
    data_size_plot(points, budget, args.output / "data_size.png")
    print(args.output / "data_size.png")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from seq2seqkit import metrics
    from seq2seqkit.evaluation import Segment, score
    from seq2seqkit.tasks import Task

    if args.model is None:
        if args.hyp is None or not args.ref:
            raise Seq2SeqError("evaluate needs --hyp FILE and --ref FILE, or --model DIR")
        hypotheses = list(_input_lines(args.hyp))
        references = [list(_input_lines(ref)) for ref in args.ref]
        for path, refs in zip(args.ref, references, strict=True):
            if len(refs) != len(hypotheses):
                raise DataError(f"{path} has {len(refs)} lines but {args.hyp} has {len(hypotheses)}")
        segments = [Segment("", [refs[i] for refs in references]) for i in range(len(hypotheses))]
        task = Task("evaluate", tuple(metrics.METRICS[m] for m in (args.metric or ["bleu"])))
        _print_scores(score(task, hypotheses, segments), len(references))
        return 0

    from seq2seqkit.data.readers import read_parallel
    from seq2seqkit.evaluation import evaluate
    from seq2seqkit.recipes import check_corpora
    from seq2seqkit.tasks import read_split, task_of

    _check_positive("--beam", args.beam)
    pipeline = _load(args.model, args.device)
    _set_search(pipeline, args)
    task = task_of(pipeline.config)
    if args.metric:
        task = dataclasses.replace(task, metrics=tuple(metrics.METRICS[m] for m in args.metric))
    if args.src is not None:
        if len(args.ref) != 1:
            raise Seq2SeqError("with --model and --src, give exactly one --ref")
        pairs = read_parallel(args.src, args.ref[0])
    else:
        check_corpora(pipeline.config.data)
        pairs = read_split(pipeline.config, args.split)
        if not pairs:
            raise Seq2SeqError(f"the model's config has no {args.split} split; use --src and --ref")
    result = evaluate(pipeline, pairs, task, beam=args.beam or pipeline.config.decoding.beam_size)
    _print_scores(result.scores, max(len(s.references) for s in result.segments))
    return 0


def _print_scores(scores: dict[str, float], num_references: int) -> None:
    for name, value in scores.items():
        print(f"{name}: {value:.2f}")
    if "BLEU" in scores:
        from seq2seqkit.metrics import bleu_signature

        print(f"BLEU signature: {bleu_signature(num_references)}")


if __name__ == "__main__":
    sys.exit(main())
