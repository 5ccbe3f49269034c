#!/usr/bin/env bash
# With and without each data technique of docs/data.md, at the recipe's own budget, one run
# after the other on this machine: subword sampling (en-de and summarization, 20 minutes each),
# speed perturbation (AN4, 60 minutes each), and the en-de learning curves (RNN and Transformer,
# MINUTES a share, default 10). Back-translation has its own script (bench/back_translation.sh).
#
#   flock /tmp/cpu.lock bash bench/data_need.sh sampling     # the rows whose name starts so
#   flock /tmp/cpu.lock bash bench/data_need.sh speed
#   flock /tmp/cpu.lock bash bench/data_need.sh curves       # seq2seqkit analyze data-size, 8 runs
#
# Models go under OUT (default runs/data-need); a run trained to its end there is kept and only
# reported (delete its directory to retrain), an interrupted one is trained again. Compare rows only
# within one session on one machine kind, with nothing else CPU-heavy running.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$ROOT"
OUT=${OUT:-runs/data-need}
S2S=".venv/bin/python -m seq2seqkit"
source bench/rows.sh
# name | recipe | overrides (split at spaces)
ROWS=(
  "sampling-en-de-without|mt-debian-en-de|"
  "sampling-en-de-dropout-0.1|mt-debian-en-de|data.src_tokenizer.sampling.alpha=0.1 data.tgt_tokenizer.sampling.alpha=0.1"
  "sampling-en-de-src-dropout-0.05|mt-debian-en-de|data.src_tokenizer.sampling.alpha=0.05"
  "sampling-summarize-without|summarize-debian|"
  "sampling-summarize-dropout-0.1|summarize-debian|data.src_tokenizer.sampling.alpha=0.1 data.tgt_tokenizer.sampling.alpha=0.1"
  "speed-an4-without|asr-an4|"
  "speed-an4-0.9-1.0-1.1|asr-an4|data.audio.speed_perturbation=[0.9,1.0,1.1]"
)

if [[ ${1:-} == curves ]]; then
  $S2S analyze data-size mt-debian-en-de mt-debian-en-de-transformer --fractions 0.1,0.25,0.5,1 \
    --minutes "${MINUTES:-10}" --output "$OUT/en-de-curves"
  exit
fi
for row in "${ROWS[@]}"; do
  IFS='|' read -r name recipe overrides <<<"$row"
  [[ $name == "${1:-}"* ]] || continue
  train_row "$name" "$recipe" "$overrides"
  grep -E "^\- \*\*CPU kind\*\*" "$OUT/$name/README.md" || true
  if [[ -f $OUT/$name/test_scores.json ]]; then
    cat "$OUT/$name/test_scores.json"
  else  # no test split (AN4's is held out): the valid split with the recipe's decoding
    $S2S evaluate --model "$OUT/$name" --split valid
  fi
  echo
done
