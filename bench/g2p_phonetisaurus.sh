#!/usr/bin/env bash
# The G2P yardstick: Phonetisaurus (the joint-sequence n-gram WFST G2P of Novak et al.; the
# phonetisaurus 0.3.0 wheel ships its binaries) trained on our CMUdict training split and scored
# on our test split with our definitions (WER: a word is wrong if it matches none of its
# references; PER against the closest one). Prints the training time and the scores; work files go
# under $PEERS/phonetisaurus.
#
#   bash bench/g2p_phonetisaurus.sh
#
# Phonetisaurus trains on one core; run nothing else CPU-heavy meanwhile if the time matters.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
PEERS=$(realpath -m "${PEERS:-/tmp/peers}")
W=$PEERS/phonetisaurus
PY=$ROOT/.venv/bin/python
mkdir -p "$W"
if ! "$PEERS/phonetisaurus_venv/bin/python" -c "import phonetisaurus" 2>/dev/null; then
  rm -rf "$PEERS/phonetisaurus_venv"
  python3 -m venv "$PEERS/phonetisaurus_venv"
  "$PEERS/phonetisaurus_venv/bin/pip" install -q phonetisaurus==0.3.0
fi
P="$PEERS/phonetisaurus_venv/bin/python -m phonetisaurus"

# our splits: the training lexicon (word phonemes...) and the test words
"$PY" - "$W" <<'PY'
import sys
from pathlib import Path

import seq2seqkit
from seq2seqkit.evaluation import segments_of
from seq2seqkit.tasks import read_split, task_of

out = Path(sys.argv[1])
config = seq2seqkit.load_config("g2p")
train = read_split(config, "train")
(out / "train.dict").write_text("".join(f"{p.src} {p.tgt}\n" for p in train))
test = segments_of(read_split(config, "test"), task_of(config).group_references)
(out / "test.words").write_text("".join(f"{s.source}\n" for s in test))
PY

start=$EPOCHREALTIME
$P train --model "$W/g2p.fst" "$W/train.dict" > "$W/train.log" 2>&1
seconds=$(awk "BEGIN { printf \"%.0f\", $EPOCHREALTIME - $start }")
echo "phonetisaurus: trained on $(wc -l < "$W/train.dict") pairs in $seconds s"
$P predict --model "$W/g2p.fst" < "$W/test.words" > "$W/test.predicted"

"$PY" - "$W" <<'PY'
import sys
from pathlib import Path

import seq2seqkit
from seq2seqkit.evaluation import score, segments_of
from seq2seqkit.tasks import read_split, task_of

out = Path(sys.argv[1])
config = seq2seqkit.load_config("g2p")
task = task_of(config)
test = segments_of(read_split(config, "test"), task.group_references)
predicted: dict[str, str] = {}
for line in (out / "test.predicted").read_text().splitlines():
    word, _, phonemes = line.partition(" ")
    predicted.setdefault(word, phonemes.strip())
missing = sum(s.source not in predicted for s in test)
scores = score(task, [predicted.get(s.source, "") for s in test], test)
print(f"phonetisaurus test ({len(test)} words, {missing} without output):", end="")
print("".join(f" {name} {value:.2f}" for name, value in scores.items()))
PY
