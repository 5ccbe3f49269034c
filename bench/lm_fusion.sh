#!/usr/bin/env bash
# Shallow fusion on AN4: trains the character LM (recipe lm-an4, under $LM, default runs/lm-an4)
# unless it is there, then scores each speech model given on the valid split with the recipe's
# decoding and each LM weight (WEIGHTS, default "0 0.1 0.2 0.3 0.5"; 0 is the model alone), one
# tab-separated row each: model, weight, WER, CER.
#
#   flock /tmp/cpu.lock bash bench/lm_fusion.sh runs/asr-an4 [MODEL ...]
#
# The weight is chosen on valid, and AN4's valid split (64 utterances) is also where its figures
# are read: with so few utterances, differences of a point or two are within the noise.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$ROOT"
LM=${LM:-runs/lm-an4}
WEIGHTS=${WEIGHTS:-0 0.1 0.2 0.3 0.5}
S2S=".venv/bin/python -m seq2seqkit"
[[ $# -gt 0 ]] || { echo "usage: bench/lm_fusion.sh MODEL_DIR [MODEL_DIR ...]" >&2; exit 2; }
if ! grep -qs "finished at step" "$LM/train.log"; then
  rm -rf "${LM:?}"
  $S2S train lm-an4 --output "$LM" >/dev/null
fi
grep -o "finished at step.*" "$LM/train.log" | tail -1
printf "model\tlm_weight\tWER\tCER\n"
for model in "$@"; do
  for weight in $WEIGHTS; do
    scores=$($S2S evaluate --model "$model" --split valid --lm "$LM" --lm-weight "$weight")
    printf "%s\t%s\t%s\t%s\n" "$model" "$weight" \
      "$(grep -oP '^WER: \K.*' <<<"$scores")" "$(grep -oP '^CER: \K.*' <<<"$scores")"
  done
done
