#!/usr/bin/env bash
# Shallow fusion on AN4: trains the character LM (recipe lm-an4, under $LM, default runs/lm-an4)
# unless it is there, then scores each speech model given on the valid split with each LM weight
# (WEIGHTS, default "0 0.1 0.2 0.3 0.5"; 0 is the model alone), beam size (BEAMS, default 5) and
# CTC weight of joint decoding (CTC_WEIGHTS, default: the model's own), one tab-separated row
# each: model, beam, ctc_weight, lm_weight, WER, CER.
#
#   flock /tmp/cpu.lock bash bench/lm_fusion.sh runs/asr-an4 [MODEL ...]
#   BEAMS="1 5" CTC_WEIGHTS="0.3 0.5 0.7" WEIGHTS="0 0.2" bash bench/lm_fusion.sh runs/asr-an4
#
# The weight is chosen on valid, and AN4's valid split (64 utterances) is also where its figures
# are read: with so few utterances, differences of a point or two are within the noise.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$ROOT"
LM=${LM:-runs/lm-an4}
WEIGHTS=${WEIGHTS:-0 0.1 0.2 0.3 0.5}
BEAMS=${BEAMS:-5}
CTC_WEIGHTS=${CTC_WEIGHTS:-model}
S2S=".venv/bin/python -m seq2seqkit"
[[ $# -gt 0 ]] || { echo "usage: bench/lm_fusion.sh MODEL_DIR [MODEL_DIR ...]" >&2; exit 2; }
if ! grep -qs "finished at step" "$LM/train.log"; then
  rm -rf "${LM:?}"
  $S2S train lm-an4 --output "$LM" >/dev/null
fi
grep -o "finished at step.*" "$LM/train.log" | tail -1
printf "model\tbeam\tctc_weight\tlm_weight\tWER\tCER\n"
for model in "$@"; do
  for beam in $BEAMS; do
    for ctc in $CTC_WEIGHTS; do
      ctc_option=()
      [[ $ctc == model ]] || ctc_option=(--ctc-weight "$ctc")
      for weight in $WEIGHTS; do
        scores=$($S2S evaluate --model "$model" --split valid --beam "$beam" "${ctc_option[@]}" \
          --lm "$LM" --lm-weight "$weight")
        printf "%s\t%s\t%s\t%s\t%s\t%s\n" "$model" "$beam" "$ctc" "$weight" \
          "$(grep -oP '^WER: \K.*' <<<"$scores")" "$(grep -oP '^CER: \K.*' <<<"$scores")"
      done
    done
  done
done
