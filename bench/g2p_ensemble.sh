#!/usr/bin/env bash
# What ensembling G2P models at decoding buys: g2p (the demo) trained once per seed in SEEDS
# (default "1 2"), one after the other, then each alone and the ensembles of the first 2, 3, ...
# of them (the log of the mean of their probabilities at each step) scored on the test split with
# beam 5. Models go under OUT (default runs/g2p-ensemble); a model trained to its end there is kept
# (delete its directory to retrain). Eight seeds are two hours of training on 2 cores.
#
#   flock /tmp/cpu.lock bash bench/g2p_ensemble.sh
#   SEEDS="1 2 3 4" flock /tmp/cpu.lock bash bench/g2p_ensemble.sh
#
# The demo's budget is wall-clock minutes: run nothing else CPU-heavy meanwhile.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$ROOT"
OUT=${OUT:-runs/g2p-ensemble}
S2S=".venv/bin/python -m seq2seqkit"
read -r -a seeds <<< "${SEEDS:-1 2}"
for seed in "${seeds[@]}"; do
  if ! grep -qs "finished at step" "$OUT/seed$seed/train.log"; then  # not trained to its end yet
    rm -rf "${OUT:?}/seed$seed"
    $S2S train g2p --output "$OUT/seed$seed" --set "training.seed=$seed" >/dev/null
  fi
  tail -1 "$OUT/seed$seed/train.log"
done
members=()
for seed in "${seeds[@]}"; do
  echo "== seed $seed (test, beam 5)"
  $S2S evaluate --model "$OUT/seed$seed" --split test --beam 5
  members+=(--model "$OUT/seed$seed")
  if [ ${#members[@]} -ge 4 ]; then
    echo "== ensemble of seeds ${seeds[*]:0:${#members[@]}/2} (test, beam 5)"
    $S2S evaluate "${members[@]}" --split test --beam 5
  fi
done
