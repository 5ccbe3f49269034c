#!/usr/bin/env bash
# Back-translation on Debian en-de (Sennrich et al., 2016; docs/data.md): a reverse (de->en)
# model translates German manual pages, by beam search and by sampling (Edunov et al., 2018), and
# mt-debian-en-de trains on the genuine pairs plus each synthetic set, against the genuine alone.
#
#   bash bench/back_translation.sh reverse      # the de->en model (MINUTES of training)
#   bash bench/back_translation.sh synthetic    # German sentences (scripts/manpages_de.py), translated twice
#   bash bench/back_translation.sh final        # en-de without, with beam and with sampled back-translations
#   bash bench/back_translation.sh report       # the test scores of the final models
#
# Each stage reuses what an earlier one left in $OUT; the final models' comparison needs its three
# runs in one session on one machine kind. Time it: every stage prints its seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/back-translation}
MINUTES=${MINUTES:-20}
TOP_K=${TOP_K:-10}          # sampled back-translation draws from the 10 most probable tokens
S2S=(.venv/bin/python -m seq2seqkit)
mkdir -p "$OUT"

timed() {  # timed NAME COMMAND...: run it, then say how long it took
  local name=$1 start=$SECONDS
  shift
  "$@"
  echo "back_translation: $name took $((SECONDS - start)) s" | tee -a "$OUT/timings.txt" >&2
}

reverse() {
  timed "reverse model (de->en, $MINUTES min)" "${S2S[@]}" train mt-debian-en-de --output "$OUT/reverse-de-en" \
    --set data.src_suffix=de --set data.tgt_suffix=en --set "training.max_minutes=$MINUTES"
}

synthetic() {
  [ -s "$OUT/manpages.de" ] || timed "German sentences" .venv/bin/python scripts/manpages_de.py --output "$OUT/manpages.de"
  timed "beam-5 back-translation" "${S2S[@]}" generate "$OUT/reverse-de-en" --input "$OUT/manpages.de" \
    --beam 5 --precision auto > "$OUT/beam.out"
  timed "sampled back-translation (top-$TOP_K)" "${S2S[@]}" generate "$OUT/reverse-de-en" \
    --input "$OUT/manpages.de" --sample --top-k "$TOP_K" --seed 1 --precision auto > "$OUT/sampled.out"
  pairs beam
  pairs sampled
}

pairs() {  # pairs NAME: NAME.{en,de}, the synthetic pairs, leaving out empty translations (counted)
  paste "$OUT/manpages.de" "$OUT/$1.out" | awk -F '\t' -v name="$1" -v de="$OUT/$1.de" -v en="$OUT/$1.en" '
    $2 == "" { empty++; next }
    { print $1 > de; print $2 > en; kept++ }
    END { printf "back_translation: %s: %d synthetic pairs, %d empty translations left out\n", name, kept, empty }'
}

final() {
  local budget=(--set "training.max_minutes=$MINUTES")
  [ -f "$OUT/without/test_scores.json" ] ||
    timed "en-de without" "${S2S[@]}" train mt-debian-en-de --output "$OUT/without" "${budget[@]}"
  [ -f "$OUT/beam-tagged/test_scores.json" ] ||
    timed "en-de with beam back-translations, tagged" "${S2S[@]}" train mt-debian-en-de \
      --output "$OUT/beam-tagged" "${budget[@]}" \
      --set "data.extra_train=[{path: $OUT/beam, tag: '<BT>'}]"
  [ -f "$OUT/sampled/test_scores.json" ] ||
    timed "en-de with sampled back-translations" "${S2S[@]}" train mt-debian-en-de \
      --output "$OUT/sampled" "${budget[@]}" --set "data.extra_train=[{path: $OUT/sampled}]"
  report
}

report() {
  for run in without beam-tagged sampled; do
    if [ -f "$OUT/$run/test_scores.json" ]; then
      echo "$run: $(tr -d '\n ' < "$OUT/$run/test_scores.json")"
    fi
  done
}

case ${1:-all} in
  reverse) reverse ;;
  synthetic) synthetic ;;
  final) final ;;
  report) report ;;
  all) reverse && synthetic && final ;;
  *) echo "usage: bash bench/back_translation.sh [reverse|synthetic|final|report|all]" >&2; exit 2 ;;
esac
