#!/usr/bin/env bash
# RNN against Transformer at the same wall-clock budget, one after the other on this machine:
# each row trains a built-in recipe (with the overrides given) and prints the test scores that
# training wrote (beam and greedy), its steps and its machine kind. Models go under OUT (default
# runs/architectures); a model trained to its end there is kept (delete its directory to retrain).
#
#   flock /tmp/cpu.lock bash bench/architectures.sh            # every row below
#   flock /tmp/cpu.lock bash bench/architectures.sh g2p         # the rows whose name starts so
#
# Budgets are wall-clock minutes: run nothing else CPU-heavy meanwhile.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$ROOT"
OUT=${OUT:-runs/architectures}
S2S=".venv/bin/python -m seq2seqkit"
source bench/rows.sh
# name | recipe | overrides (split at spaces)
ROWS=(
  "g2p-rnn|g2p|"
  "g2p-transformer|g2p-transformer|"
  "en-de-rnn|mt-debian-en-de|"
  "en-de-transformer|mt-debian-en-de-transformer|"
  "summarize-rnn|summarize-debian|"
  "summarize-transformer|summarize-debian-transformer|"
  "qa-rnn|qa-squad-20min|"
  "qa-transformer|qa-squad-20min-transformer|"
  "asr-rnn|asr-an4|"
  "asr-transformer|asr-an4-transformer|"
)
for row in "${ROWS[@]}"; do
  IFS='|' read -r name recipe overrides <<<"$row"
  [[ $name == "${1:-}"* ]] || continue
  train_row "$name" "$recipe" "$overrides"
  grep -E "^\- \*\*CPU kind\*\*|^\- \*\*parameters\*\*" "$OUT/$name/README.md"
  # speech holds its test set out: its row is the best validation, on the "finished" line above
  [[ ! -f $OUT/$name/test_scores.json ]] || cat "$OUT/$name/test_scores.json"
  echo
done
