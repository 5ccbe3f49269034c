#!/usr/bin/env bash
# The G2P demo's recipe against variants of it at the same wall-clock budget: g2p
# trained once as it is and once per variant (NAME=KEY=VALUE KEY=VALUE ...: its --set overrides,
# split at spaces, so a value has none: model.encoder.num_layers=2), one after the
# other; training ends by scoring the test split (beam 5 and greedy: test_scores.json, printed
# here). Models go under OUT (default runs/g2p-variants); a model trained to its end there is
# kept (delete its directory to retrain).
#
#   flock /tmp/cpu.lock bash bench/g2p_variants.sh                       # the variants below
#   flock /tmp/cpu.lock bash bench/g2p_variants.sh "lr5=training.lr=0.005"   # or your own
#
# The budget is the demo's max_minutes: run nothing else CPU-heavy meanwhile.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$ROOT"
OUT=${OUT:-runs/g2p-variants}
S2S=".venv/bin/python -m seq2seqkit"
if [ $# -eq 0 ]; then
  set -- "batch-2000=training.batch_tokens=2000 training.max_steps=4800" \
         "batch-1000=training.batch_tokens=1000 training.max_steps=9600" \
         "average-3=training.validate_every=200 training.average_last=3"
fi
for variant in "demo=" "$@"; do
  name=${variant%%=*}
  overrides=()
  for item in ${variant#*=}; do overrides+=(--set "$item"); done
  if ! grep -qs "finished at step" "$OUT/$name/train.log"; then  # not trained to its end yet
    rm -rf "${OUT:?}/$name"
    $S2S train g2p --output "$OUT/$name" "${overrides[@]}" >/dev/null
  fi
  echo "== $name (${variant#*=}): $(grep -o 'finished at step.*' "$OUT/$name/train.log" | tail -1)"
  tr -s ' \n' ' ' < "$OUT/$name/test_scores.json"; echo
done
