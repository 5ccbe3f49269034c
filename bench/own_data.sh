#!/usr/bin/env bash
# The recipe `seq2seqkit train DATA` chooses against the hand-written one, at the same budget,
# one run after the other on this machine. Each row trains the automatic choice (DATA with the
# flags given) and the hand recipe (with its overrides), then prints both test scores, their steps
# and the machine kind; an ablation row trains only the automatic choice with one decision turned
# around. Data: scripts/own_data_tasks.py (under OUT/tasks) and ../shared/data.
# Models go under OUT (default runs/own-data); a model trained to its end there is kept.
#
#   flock /tmp/cpu.lock bash bench/own_data.sh            # every row
#   flock /tmp/cpu.lock bash bench/own_data.sh g2p        # the rows whose name starts so
#
# Budgets are wall-clock minutes: run nothing else CPU-heavy meanwhile.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$ROOT"
OUT=${OUT:-runs/own-data}
T=$OUT/tasks
S2S=".venv/bin/python -m seq2seqkit"
[[ -f $T/dates/dates.tsv && ( -f $T/squad/test.jsonl || ! -d ../shared/data/squad ) ]] || .venv/bin/python scripts/own_data_tasks.py "$T" >/dev/null
# name | data and flags of the automatic run | hand recipe and --set overrides (@auto: the data
# files the automatic run wrote; "-": none, an ablation row) | a finished run of the hand recipe on
# this machine kind to report instead of training it again (optional)
ROWS=(
  "reverse|$T/reverse --minutes 1|toy_reverse"
  "g2p|$T/g2p --minutes 11 --task g2p|g2p"
  "p2g|$T/p2g --minutes 5|bench/own_data/p2g.yaml"
  "dates|$T/dates --minutes 5|bench/own_data/dates.yaml @auto"
  "summarize|../shared/data/debian/summarize --minutes 20|summarize-debian|runs/architectures/summarize-rnn"
  "en-de|../shared/data/debian/en-de --pair en-de --minutes 20|mt-debian-en-de"
  "squad|$T/squad --minutes 20|qa-squad-reader-20min|runs/qa-reader/qa-squad-reader-20min"
  # which choice mattered: the automatic choice with one decision turned around
  "ablate-dates-words|$T/dates --minutes 5 --set data.src_tokenizer.type=word --set data.tgt_tokenizer.type=word|-"
  "ablate-summarize-nocopy|../shared/data/debian/summarize --minutes 20 --set model.decoder.copy=false|-"
)
finished() { grep -qs "finished at step" "$1/train.log"; }
report() {
  echo "-- $1"
  grep "finished at step" "$2/train.log" | tail -1
  grep -E "^\- \*\*CPU kind\*\*" "$2/README.md" || true
  cat "$2/test_scores.json"; echo
}
for row in "${ROWS[@]}"; do
  IFS='|' read -r name auto hand reuse <<<"$row"
  [[ $name == "${1:-}"* ]] || continue
  read -r -a auto_args <<<"$auto"
  read -r recipe overrides <<<"$hand"
  finished "$OUT/$name-auto" || { rm -rf "${OUT:?}/$name-auto"; $S2S train "${auto_args[@]}" --output "$OUT/$name-auto" >/dev/null; }
  echo "== $name"
  report "automatic: seq2seqkit train $auto" "$OUT/$name-auto"
  [[ $recipe == - ]] && continue
  sets=()
  if [[ ${overrides:-} == @auto ]]; then
    for split in train valid test; do sets+=(--set "data.$split=$OUT/$name-auto/data/$split.tsv"); done
  fi
  hand_dir=$OUT/$name-hand
  if [[ -n ${reuse:-} ]] && finished "$reuse"; then
    hand_dir=$reuse
  elif ! finished "$hand_dir"; then
    rm -rf "${hand_dir:?}"
    $S2S train "$recipe" --output "$hand_dir" "${sets[@]}" >/dev/null
  fi
  report "hand: $recipe" "$hand_dir"
done
