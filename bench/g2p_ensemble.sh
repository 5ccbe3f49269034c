#!/usr/bin/env bash
# What ensembling two G2P models at decoding buys: g2p (the demo) trained twice with
# different seeds, one after the other, then each and both together (the log of the mean of their
# probabilities at each step) scored on the test split with beam 5. Models go under OUT (default
# runs/g2p-ensemble); a model trained to its end there is kept (delete its directory to retrain).
#
#   flock /tmp/cpu.lock bash bench/g2p_ensemble.sh
#
# The demo's budget is wall-clock minutes: run nothing else CPU-heavy meanwhile.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$ROOT"
OUT=${OUT:-runs/g2p-ensemble}
S2S=".venv/bin/python -m seq2seqkit"
for seed in 1 2; do
  if ! grep -qs "finished at step" "$OUT/seed$seed/train.log"; then  # not trained to its end yet
    rm -rf "${OUT:?}/seed$seed"
    $S2S train g2p --output "$OUT/seed$seed" --set "training.seed=$seed" >/dev/null
  fi
  tail -1 "$OUT/seed$seed/train.log"
done
for seed in 1 2; do
  echo "== seed $seed (test, beam 5)"
  $S2S evaluate --model "$OUT/seed$seed" --split test --beam 5
done
echo "== ensemble of seeds 1 and 2 (test, beam 5)"
$S2S evaluate --model "$OUT/seed1" --model "$OUT/seed2" --split test --beam 5
