#!/usr/bin/env bash
# What attention and CTC add for speech: three models of asr-an4 trained one after
# the other for MINUTES each (default 40) on AN4 with the whole machine, differing only in how the
# speller reads the listener:
#   no-attention   the fixed context vector c (the encoder's last states) fed at every step, no CTC
#   attention      the recipe's general attention, no CTC head (attention-only training)
#   ctc-attention  the recipe: attention + a CTC head trained jointly (lambda 0.5), joint decoding
#                  (attention beam search with CTC prefix scores)
# then WER / CER of each on the valid split (beam 5), and WER by utterance length in seconds as a
# table and a picture (seq2seqkit analyze length). Models go under OUT (default runs/asr-ablation).
#
#   flock /tmp/cpu.lock bash bench/asr_ablation.sh
#
# The budget is wall-clock time, so the models run one at a time (three at once on one thread each
# learn nothing in 25 minutes): run nothing else CPU-heavy meanwhile. A model trained to its end
# under OUT is kept (delete its directory to train it again).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$ROOT"
MINUTES=${MINUTES:-40}
OUT=${OUT:-runs/asr-ablation}
S2S=".venv/bin/python -m seq2seqkit"
common=(--set "training.max_minutes=$MINUTES")
declare -A variants=(
  [no-attention]="model.decoder.context=every_step model.decoder.location=false model.ctc_weight=0 decoding.method=attention"
  [attention]="model.ctc_weight=0 decoding.method=attention"
  [ctc-attention]="model.ctc_weight=0.5 decoding.method=joint"
)
for name in no-attention attention ctc-attention; do
  if ! grep -qs "finished at step" "$OUT/$name/train.log"; then  # not trained to its end yet
    sets=()
    for kv in ${variants[$name]}; do sets+=(--set "$kv"); done
    rm -rf "${OUT:?}/$name"
    $S2S train asr-an4 --output "$OUT/$name" "${common[@]}" "${sets[@]}" >/dev/null
  fi
done
for name in no-attention attention ctc-attention; do tail -1 "$OUT/$name/train.log"; done
for name in no-attention attention ctc-attention; do
  echo "== $name (valid, beam 5)"
  $S2S evaluate --model "$OUT/$name" --split valid --beam 5
done
$S2S analyze length "$OUT"/no-attention "$OUT"/attention "$OUT"/ctc-attention --split valid --beam 5 \
  --buckets 4 --output "$OUT/wer_by_length.png"
