#!/usr/bin/env bash
# The Transformer yardstick (issue 32): OpenNMT-py 3.5.1's Transformer with our en-de Transformer
# recipe's shape (3 + 3 pre-norm layers, d_model 256, 4 heads, feed-forward 1024, dropout 0.1,
# shared and tied embeddings over one vocabulary), trained for BUDGET_S seconds (default 1200, the
# recipe's 20 minutes) on the same SentencePiece pieces as our trained model, with the same peak
# learning rate after the same 500 warmup steps, token batches of the same size, label smoothing 0.1
# and gradient clipping 1.0. It then decodes the test split greedy and with beam 5 with OpenNMT-py,
# converts the checkpoint to CTranslate2 int8 (the field's fastest CPU engine) and decodes again,
# and prints one JSON line: steps, training target tok/s and peak RSS, decoding sentences/s, BLEU
# and chrF for each. Work files go under $PEERS/transformer.
#
#   bash bench/transformer_peer.sh MODEL_DIR      # MODEL_DIR: our trained en-de Transformer
#
# Our side, in the same session: that model's train.log (tok/s, peak memory), test_scores.json and
# `bench/onnx_decode.py MODEL_DIR` (PyTorch and ONNX int8 sentences/s). Run nothing else
# CPU-heavy meanwhile: the budget is wall-clock time.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
MODEL=$(realpath "${1:?usage: bench/transformer_peer.sh MODEL_DIR (a trained en-de Transformer)}")
source "$ROOT/bench/onmt_run.sh"
RAW=$(realpath -m "${RAW:-$SHARED/data/debian/en-de}")
W=$PEERS/transformer
[ -f "$MODEL/src.spm.model" ] || { echo "$MODEL: not a trained SentencePiece model directory (train mt-debian-en-de-transformer first)" >&2; exit 1; }
[ -f "$RAW/train.en" ] || { echo "$RAW/train.en: no such file (the shared data is missing)" >&2; exit 1; }

bash "$SHARED/peers/setup_venvs.sh" >&2
if [ "${DECODE_ONLY:-0}" != 1 ]; then  # DECODE_ONLY=1: decode and score the last run again
rm -rf "$W"; mkdir -p "$W/model" "$W/data"
for split in train valid test; do
  for side in en de; do
    spm=$MODEL/src.spm.model; [ $side = de ] && spm=$MODEL/tgt.spm.model
    "$PY" -c "import sys, sentencepiece as spm; sp = spm.SentencePieceProcessor(model_file=sys.argv[1]); [print(' '.join(sp.encode(line.rstrip('\n'), out_type=str))) for line in sys.stdin]" \
      "$spm" < "$RAW/$split.$side" > "$W/data/$split.$side"
  done
done

# noam: lr * d_model^-0.5 * min(step^-0.5, step * warmup^-1.5) peaks at step = warmup; 0.358 puts
# that peak at our recipe's 1e-3 (0.358 * 256^-0.5 * 500^-0.5). OpenNMT-py has no cosine decay.
cat > "$W/config.yaml" <<YAML
save_data: $W/run
src_vocab: $W/vocab.src
tgt_vocab: $W/vocab.tgt
overwrite: true
data:
  corpus_1: {path_src: $W/data/train.en, path_tgt: $W/data/train.de, transforms: [filtertoolong]}
  valid: {path_src: $W/data/valid.en, path_tgt: $W/data/valid.de}
src_seq_length: 100
tgt_seq_length: 100
src_vocab_size: 20000
tgt_vocab_size: 20000
words_min_frequency: 1
share_vocab: true
model_type: text
encoder_type: transformer
decoder_type: transformer
position_encoding: true
enc_layers: 3
dec_layers: 3
heads: 4
hidden_size: 256
word_vec_size: 256
transformer_ff: 1024
dropout: [0.1]
attention_dropout: [0.1]
share_embeddings: true
share_decoder_embeddings: true
param_init: 0
param_init_glorot: true
optim: adam
adam_beta1: 0.9
adam_beta2: 0.998
learning_rate: 0.358
decay_method: noam
warmup_steps: 500
max_grad_norm: 1
label_smoothing: 0.1
batch_type: tokens
batch_size: 4096
normalization: tokens
$(onmt_run_settings)
YAML

onmt_train_for_budget
fi
CKPT=$(onmt_last_checkpoint)

rm -rf "$W/ct2"
# OpenNMT-py 3.5.1 names its default attention scaled-dot-flash (torch's scaled_dot_product_attention),
# which CTranslate2's converter refuses; it is the same computation as scaled-dot, so convert a copy
# that says so. The checkpoint pickles OpenNMT-py's options (argparse.Namespace): it is this run's own.
"$V/python" -c "import sys, torch; c = torch.load(sys.argv[1], map_location='cpu', weights_only=False); c['opt'].self_attn_type = 'scaled-dot'; torch.save(c, sys.argv[2])" \
  "$CKPT" "$W/ct2_input.pt"
"$V/ct2-opennmt-py-converter" --model_path "$W/ct2_input.pt" --output_dir "$W/ct2" --quantization int8 \
  --unsafe_deserialization > "$W/ct2_convert.log" 2>&1 \
  || { echo "CTranslate2 conversion failed, see $W/ct2_convert.log" >&2; exit 1; }
for beam in 1 5; do
  "$V/onmt_translate" -model "$CKPT" -src "$W/data/test.en" -output "$W/test.onmt.beam$beam.sp" -beam_size $beam \
    -max_length 250 -batch_size 8000 -batch_type tokens -gpu -1 -report_time > "$W/translate.beam$beam.log" 2>&1 \
    || { echo "onmt_translate failed, see $W/translate.beam$beam.log" >&2; exit 1; }
  # CTranslate2: the median of three decodes of the whole split, timed around translate_batch only
  "$V/python" - "$W/ct2" "$W/data/test.en" "$W/test.ct2.beam$beam.sp" $beam > "$W/ct2.beam$beam.seconds" <<'PY'
import statistics, sys, time

import ctranslate2

model, source, output, beam = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
translator = ctranslate2.Translator(model, device="cpu", compute_type="int8", inter_threads=1, intra_threads=2)
batch = [line.split() for line in open(source, encoding="utf-8")]
times = []
for _ in range(3):
    start = time.perf_counter()
    results = translator.translate_batch(batch, beam_size=beam, max_batch_size=8000, batch_type="tokens",
                                         max_decoding_length=250)
    times.append(time.perf_counter() - start)
with open(output, "w", encoding="utf-8") as out:
    out.writelines(" ".join(r.hypotheses[0]) + "\n" for r in results)
print(f"{statistics.median(times):.3f}")
PY
  for engine in onmt ct2; do
    "$PY" -c "import sys, sentencepiece as spm; sp = spm.SentencePieceProcessor(model_file=sys.argv[1]); [print(sp.decode(line.split())) for line in sys.stdin]" \
      "$MODEL/tgt.spm.model" < "$W/test.$engine.beam$beam.sp" > "$W/test.$engine.beam$beam.txt"
    "$ROOT/.venv/bin/seq2seqkit" evaluate --hyp "$W/test.$engine.beam$beam.txt" --ref "$RAW/test.de" \
      --metric bleu --metric chrf > "$W/scores.$engine.beam$beam.txt"
  done
done

"$PY" - "$W" "$CKPT" <<'PY'
import json, re, statistics, sys
from pathlib import Path

work, checkpoint = Path(sys.argv[1]), sys.argv[2]
sentences = sum(1 for _ in open(work / "data/test.en", encoding="utf-8"))
log = (work / "train.stdout.log").read_text(errors="replace")
# "Step 50/1000000; acc: ...; bsz: 1396/1699/69; 2997/3646 tok/s;": target tok/s, first report left out
rates = [int(t) for t in re.findall(r"Step \d+/\s*\d+;.*?\d+/\s*(\d+) tok/s;", log)][1:]
rss_kb = re.search(r"Maximum resident set size \(kbytes\): (\d+)", (work / "train_time_v.txt").read_text())
result = {
    "toolkit": "OpenNMT-py 3.5.1 Transformer",
    "steps": int(re.search(r"model_step_(\d+)\.pt", checkpoint).group(1)),
    "train_s": int((work / "train_seconds").read_text()),
    "train_tgt_tok_per_s": round(statistics.mean(rates)) if rates else None,
    "train_peak_rss_mb": round(int(rss_kb.group(1)) / 1024) if rss_kb else None,
}
for beam in (1, 5):
    onmt = re.search(r"Total translation time \(s\): ([\d.]+)", (work / f"translate.beam{beam}.log").read_text())
    ct2 = float((work / f"ct2.beam{beam}.seconds").read_text())
    result[f"beam{beam}"] = {
        "onmt_sents_per_s": round(sentences / float(onmt.group(1)), 1) if onmt else None,
        "onmt_scores": (work / f"scores.onmt.beam{beam}.txt").read_text().strip(),
        "ct2_int8_sents_per_s": round(sentences / ct2, 1),
        "ct2_int8_scores": (work / f"scores.ct2.beam{beam}.txt").read_text().strip(),
    }
print(json.dumps(result))
PY
