"""Training and decoding speed against OpenNMT-py and Joey NMT on the same data, in one run.

    .venv/bin/python bench/speed.py                     # ~65 min: 2 x 20 min of our training + peers
    .venv/bin/python bench/speed.py --peers-json F      # peers measured earlier in the same session
    .venv/bin/python bench/speed.py --minutes 5 --skip-peers   # a quick look at our own figures

For each config (default: the peers' matched model, bench/matched-en-de.yaml, then our fastest
recipe, mt-debian-en-de) it trains with ``seq2seqkit train`` for the same wall-clock
budget as the peers (runs/bench/NAME; an existing finished run is reused unless --retrain) and reads:
- training target tokens/s: the mean of the log's tok/s reports without the first (which holds
  start-up), as ../shared/peers/rates.py does for the peers; peak RSS of the training process;
- decoding of test.en, greedy and beam 5, sentences/s, timed in-process without model loading
  (median of --repeats), and test BLEU / chrF of those outputs (sacrebleu).
Then the machine's float32 and bfloat16 matmul peak and the fraction of it our training reached
(FLOPs per target token counted from the model's shapes), the peers' figures (../shared/peers
quick.sh, or --peers-json), a table, and as the very last line the matched model's ratios to the
faster peer: ``ratios: train=... greedy=... beam5=... memory=...`` (memory: our peak RSS over the
lower of the peers'). Before it, per config, how the training's memory grew: ``memory: 10%=.. MB
50%=.. MB 100%=.. MB growth=..x`` (bench/memory_over_run.py).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from memory_over_run import memory_line

from seq2seqkit.device import configure_memory, native_bfloat16
from seq2seqkit.metrics import bleu, chrf
from seq2seqkit.pipeline import Pipeline, load
from seq2seqkit.recipes import load_config
from seq2seqkit.tasks import read_split

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT.parent / "shared" / "peers"
THREADS = 2  # as the peers' reference runs


@dataclass
class Measured:
    name: str
    steps: int
    train_tok_s: float
    peak_rss_mb: float
    precision: str
    greedy_s: float
    beam5_s: float
    segments: int
    bleu_greedy: float
    chrf_greedy: float
    bleu_beam5: float
    chrf_beam5: float
    flops_per_token: float
    memory: str  # peak RSS at 10%, 50% and 100% of the training run (memory_over_run.py)

    @property
    def greedy_sents_s(self) -> float:
        return self.segments / self.greedy_s

    @property
    def beam5_sents_s(self) -> float:
        return self.segments / self.beam5_s


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", type=Path, action="append", help="configs to measure (repeatable)")
    parser.add_argument("--minutes", type=float, default=20.0, help="training budget per config")
    parser.add_argument("--repeats", type=int, default=3, help="decoding runs per setting (median)")
    parser.add_argument("--retrain", action="store_true", help="train again even if runs/bench/NAME exists")
    parser.add_argument("--peers-json", type=Path, help="peers' JSON (quick.sh / run_all.sh stdout)")
    parser.add_argument("--skip-peers", action="store_true", help="our figures only, no ratios")
    args = parser.parse_args()
    configs = args.config or [ROOT / "bench/matched-en-de.yaml", ROOT / "mt-debian-en-de"]
    configure_memory()
    torch.set_num_threads(THREADS)

    ours = [measure(path, args.minutes, args.retrain, args.repeats) for path in configs]
    peak = {"float32": matmul_peak(torch.float32)}
    if native_bfloat16():  # elsewhere bfloat16 matmuls are emulated: no peak worth quoting
        peak["bfloat16"] = matmul_peak(torch.bfloat16)
    peers = {} if args.skip_peers else load_peers(args.peers_json)
    report(ours, peak, peers, args)


def measure(config_path: Path, minutes: float, retrain: bool, repeats: int) -> Measured:
    config = load_config(config_path)
    out = ROOT / "runs" / "bench" / config.name
    log_path = out / "train.log"
    if retrain or not _finished(log_path):
        shutil.rmtree(out, ignore_errors=True)
        print(f"training {config.name} for {minutes:g} min -> {out}", file=sys.stderr)
        budget = [f"training.max_minutes={minutes}", "training.max_steps=0", f"training.threads={THREADS}",
                  "training.evaluate_test=false"]  # fmt: skip
        command = [sys.executable, "-m", "seq2seqkit", "train", str(config_path), "--output", str(out)]
        command += [arg for item in budget for arg in ("--set", item)]
        subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    else:
        print(f"reusing the finished run in {out} (--retrain to train again)", file=sys.stderr)
    log_text = log_path.read_text(encoding="utf-8")
    rates = [float(x) for x in re.findall(r" tok/s (\d+)", log_text)]
    finished = re.findall(r"finished at step (\d+) .*peak memory (\d+) MB", log_text)[-1]
    training_precision = re.findall(r"precision (\w+)", log_text)[-1]

    pipeline = load(out)
    pipeline.set_decoding(**config.to_dict()["decoding"])  # this config's, also for a reused run
    test = read_split(pipeline.config, "test")
    sources, references = [p.src for p in test], [[p.tgt] for p in test]
    precisions = ["float32", "bfloat16"] if native_bfloat16() else ["float32"]
    decoded = {name: decode(pipeline, sources, references, name, repeats) for name in precisions}
    # bfloat16 decoding counts only where it keeps BLEU within 0.3 of float32, greedy and beam 5
    precision = "float32"
    if "bfloat16" in decoded and all(
        abs(decoded["bfloat16"][beam][1] - decoded["float32"][beam][1]) <= 0.3 for beam in (1, 5)
    ):
        precision = "bfloat16"
    for name, results in decoded.items():
        print(f"{config.name} decoding in {name}: " + ", ".join(
            f"beam {beam} {len(sources) / t:.1f} sent/s BLEU {b:.2f} chrF {c:.2f}"
            for beam, (t, b, c) in results.items()), file=sys.stderr)  # fmt: skip
    timings = {beam: decoded[precision][beam][0] for beam in (1, 5)}
    scores = {beam: decoded[precision][beam][1:] for beam in (1, 5)}
    return Measured(
        name=config.name,
        steps=int(finished[0]),
        train_tok_s=statistics.mean(rates[1:] or rates),
        peak_rss_mb=float(finished[1]),
        precision=f"{training_precision} training, {precision} decoding",
        greedy_s=timings[1],
        beam5_s=timings[5],
        segments=len(sources),
        bleu_greedy=scores[1][0],
        chrf_greedy=scores[1][1],
        bleu_beam5=scores[5][0],
        chrf_beam5=scores[5][1],
        flops_per_token=training_flops_per_target_token(pipeline),
        memory=memory_line(log_text),
    )


def decode(
    pipeline: Pipeline, sources: list[str], references: list[list[str]], precision: str, repeats: int
) -> dict[int, tuple[float, float, float]]:
    """beam -> (median seconds to decode ``sources``, BLEU, chrF), decoding in ``precision``."""
    pipeline.set_decoding(precision=precision)
    results = {}
    for beam in (1, 5):
        pipeline.generate(sources[:16], beam=beam)  # warm-up
        seconds = []
        for _ in range(repeats):
            started = time.perf_counter()
            outputs = pipeline.generate(sources, beam=beam)
            seconds.append(time.perf_counter() - started)
        hypotheses = [o.text for o in outputs]
        results[beam] = (
            statistics.median(seconds),
            bleu(hypotheses, references),
            chrf(hypotheses, references),
        )
    return results


def _finished(log_path: Path) -> bool:
    return log_path.exists() and "finished at step" in log_path.read_text(encoding="utf-8")


def training_flops_per_target_token(pipeline: Pipeline) -> float:
    """Matmul FLOPs of forward + backward (3x forward) per target token, from the model's shapes
    and the training data's lengths (a sample); pointwise work is not counted."""
    config = pipeline.config
    pairs = read_split(config, "train")[:3000]
    src_len = [len(pipeline.source.encode(p.src).features) for p in pairs]
    tgt_len = [len(pipeline.target.ids(p.tgt)) + 1 for p in pairs]  # + <eos>
    src_per_tgt = sum(src_len) / sum(tgt_len)
    mean_src = sum(s * t for s, t in zip(src_len, tgt_len, strict=True)) / sum(tgt_len)  # per target token
    vocab_size = len(pipeline.target.vocab)

    m = config.model
    enc, dec = m.encoder, m.decoder
    directions = 2 if enc.bidirectional else 1
    gates = 4 if m.rnn_type == "lstm" else 3
    memory = enc.hidden_size * directions
    per_src = 0.0
    for layer in range(enc.num_layers):
        inputs = m.embedding_size if layer == 0 else memory
        per_src += directions * 2 * gates * enc.hidden_size * (inputs + enc.hidden_size)
    per_tgt = 0.0
    for layer in range(dec.num_layers):
        inputs = dec.hidden_size
        if layer == 0:
            inputs = m.embedding_size
            if dec.context == "every_step" or (dec.context == "attention" and dec.attention == "bahdanau"):
                inputs += memory
            elif dec.context == "attention" and dec.input_feeding:
                inputs += dec.hidden_size
        per_tgt += 2 * gates * dec.hidden_size * (inputs + dec.hidden_size)
    if dec.context == "attention":
        per_src += 2 * memory * dec.hidden_size  # keys
        per_tgt += 2 * mean_src * (dec.hidden_size + memory)  # scores and context
    if dec.context != "init":
        per_tgt += 2 * (dec.hidden_size + memory) * dec.hidden_size  # combine
    else:
        per_tgt += 2 * dec.hidden_size * dec.hidden_size
    per_tgt += 2 * dec.hidden_size * vocab_size  # output layer
    return 3 * (per_tgt + src_per_tgt * per_src)


def matmul_peak(dtype: torch.dtype, size: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of one large square matmul on THREADS threads, best of ``repeats``."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best


def load_peers(path: Path | None) -> dict:
    if path is None:
        print("measuring the peers: bash ../shared/peers/quick.sh (~11 min)", file=sys.stderr)
        result = subprocess.run(["bash", str(PEERS / "quick.sh")], check=True, capture_output=True, text=True)
        text = result.stdout
    else:
        text = path.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.strip().startswith("{")]
    return json.loads(lines[-1])


def _row(label: str, f: dict) -> tuple[str, ...]:
    """A table row from the peers' JSON field names (ours are mapped to them in ``report``)."""
    return (label, str(f["steps"]), f"{f['tgt_tok_per_s']:,.0f}", f"{f['peak_rss_mb']:,.0f}",
            f"{f['sents_per_s_greedy']:.1f}", f"{f['sents_per_s_beam5']:.1f}",
            f"{f['bleu_greedy']:.2f} / {f['chrf_greedy']:.2f}",
            f"{f['bleu_beam5']:.2f} / {f['chrf_beam5']:.2f}")  # fmt: skip


def report(ours: list[Measured], peak: dict[str, float], peers: dict, args: argparse.Namespace) -> None:
    header = ("toolkit / model", "steps", "train tgt tok/s", "peak RSS MB", "greedy sent/s", "beam5 sent/s",
              "BLEU/chrF greedy", "BLEU/chrF beam5")  # fmt: skip
    rows: list[tuple[str, ...]] = [header]
    for m in ours:
        figures = {**m.__dict__, "tgt_tok_per_s": m.train_tok_s, "sents_per_s_greedy": m.greedy_sents_s,
                   "sents_per_s_beam5": m.beam5_sents_s}  # fmt: skip
        rows.append(_row(f"seq2seqkit {m.name} ({m.precision})", figures))
    for name in ("opennmt", "joeynmt"):
        if name in peers:
            rows.append(_row(f"{name} {peers[name].get('version', '')}", peers[name]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    bfloat16 = f"{peak['bfloat16'] / 1e9:.0f} GFLOP/s" if "bfloat16" in peak else "not native on this CPU"
    float32 = f"{peak['float32'] / 1e9:.0f} GFLOP/s"
    print(f"\nmatmul peak on {THREADS} threads: float32 {float32}, bfloat16 {bfloat16}")
    for m in ours:
        achieved = m.train_tok_s * m.flops_per_token
        fractions = [f"{achieved / peak[name]:.0%} of the {name} peak" for name in peak]
        print(f"{m.name}: {m.flops_per_token / 1e6:.1f} MFLOP per target token (forward + backward), "
              f"{achieved / 1e9:.0f} GFLOP/s achieved = {', '.join(fractions)}")  # fmt: skip
        print(f"{m.name} {m.memory}")
    if not peers:
        return
    peer_list = {n: peers[n] for n in ("opennmt", "joeynmt") if n in peers}

    def ratios(m: Measured, against: list[dict]) -> str:
        train = m.train_tok_s / max(p["tgt_tok_per_s"] for p in against)
        greedy = m.greedy_sents_s / max(p["sents_per_s_greedy"] for p in against)
        beam5 = m.beam5_sents_s / max(p["sents_per_s_beam5"] for p in against)
        memory = m.peak_rss_mb / min(p["peak_rss_mb"] for p in against)
        return f"train={train:.2f} greedy={greedy:.2f} beam5={beam5:.2f} memory={memory:.2f}"

    results = {"ours": [m.__dict__ for m in ours], "peers": peers, "matmul_peak": peak}
    out = ROOT / "runs" / "bench" / "speed.json"
    out.write_text(json.dumps(results, indent=1))
    print()
    for m in ours:
        for name, figures in peer_list.items():
            print(f"{m.name} against {name}: {ratios(m, [figures])}")
    for m in ours[1:]:
        print(f"{m.name} against the faster peer: {ratios(m, list(peer_list.values()))}")
    print(f"ratios: {ratios(ours[0], list(peer_list.values()))}")


if __name__ == "__main__":
    main()
