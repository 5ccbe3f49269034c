#!/usr/bin/env bash
# The summarization yardstick: OpenNMT-py 3.5.1 with copy attention and coverage (See et al.,
# 2017: copy_attn, coverage_attn, lambda_coverage) trained for BUDGET_S seconds (default 1200, our
# recipe's 20 minutes) on the Debian summarization data, cut into the same SentencePiece pieces as
# our trained model and with sources cut to the same length, then decoded (greedy and beam 5) and
# scored with our ROUGE. Prints one JSON line; work files go under $PEERS/summarize.
#
#   bash bench/summarize_peer.sh [MODEL_DIR]     # MODEL_DIR: our trained summarize-debian model
#
# It reuses ../shared/peers/setup_venvs.sh for OpenNMT-py's own venv (installed once). Run nothing
# else CPU-heavy meanwhile: the budget is wall-clock time.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
MODEL=$(realpath "${1:-$ROOT/runs/summarize-debian}")
source "$ROOT/bench/onmt_run.sh"
RAW=$(realpath -m "${RAW:-$SHARED/data/debian/summarize}")
W=$PEERS/summarize
[ -f "$MODEL/src.spm.model" ] || { echo "$MODEL: not a trained SentencePiece model directory (train summarize-debian first)" >&2; exit 1; }
[ -f "$RAW/train.src" ] || { echo "$RAW/train.src: no such file (the shared data is missing)" >&2; exit 1; }

bash "$SHARED/peers/setup_venvs.sh" >&2
if [ "${DECODE_ONLY:-0}" != 1 ]; then  # DECODE_ONLY=1: decode and score the last run again
rm -rf "$W"; mkdir -p "$W/model" "$W/data"

# the same pieces as our model reads, sources cut to its data.max_src_len
MAX_SRC=$("$PY" - "$MODEL" "$RAW" "$W/data" <<'PY'
import sys
from pathlib import Path

import sentencepiece as spm
import yaml

model, raw, out = map(Path, sys.argv[1:])
config = yaml.safe_load((model / "config.yaml").read_text())["data"]
src_sp = spm.SentencePieceProcessor(model_file=str(model / "src.spm.model"))
tgt_sp = spm.SentencePieceProcessor(model_file=str(model / "tgt.spm.model"))
for split in ("train", "valid", "test"):
    for side, sp, cut in (("src", src_sp, config["max_src_len"]), ("tgt", tgt_sp, None)):
        lines = (raw / f"{split}.{side}").read_text(encoding="utf-8").splitlines()
        pieces = [" ".join(sp.encode(line, out_type=str)[:cut]) for line in lines]
        (out / f"{split}.{side}").write_text("\n".join(pieces) + "\n", encoding="utf-8")
print(config["max_src_len"])
PY
)

cat > "$W/config.yaml" <<YAML
save_data: $W/run
src_vocab: $W/vocab.src
tgt_vocab: $W/vocab.tgt
overwrite: true
data:
  corpus_1: {path_src: $W/data/train.src, path_tgt: $W/data/train.tgt, transforms: [filtertoolong]}
  valid: {path_src: $W/data/valid.src, path_tgt: $W/data/valid.tgt}
src_seq_length: $MAX_SRC
tgt_seq_length: 40
src_vocab_size: 20000
tgt_vocab_size: 20000
words_min_frequency: 1
share_vocab: true
# our recipe's shape: 256 embeddings, 1-layer BiLSTM (128 per direction), 1-layer 256 decoder,
# additive (mlp) attention with input feeding, tied decoder embeddings, copy + coverage
model_type: text
encoder_type: brnn
decoder_type: rnn
rnn_type: LSTM
enc_layers: 1
dec_layers: 1
word_vec_size: 256
hidden_size: 256
global_attention: mlp
input_feed: 1
bridge: false
dropout: [0.2]
share_decoder_embeddings: true
copy_attn: true
reuse_copy_attn: true
coverage_attn: true
lambda_coverage: 1
param_init: 0.1
optim: adam
learning_rate: 0.002
decay_method: none
max_grad_norm: 5
batch_type: tokens
batch_size: 4096
$(onmt_run_settings)
YAML

onmt_train_for_budget
fi
train_s=$(cat "$W/train_seconds")
CKPT=$(onmt_last_checkpoint)
# OpenNMT-py 3.5.1 saves a copy generator's weights under checkpoint["generator"] as
# "linear.weight" ..., but its loader looks them up as "generator.linear.weight" and stops with
# "Missing key in checkpoint": move them into checkpoint["model"] under the names it looks for.
"$V/python" - "$CKPT" "$W/decode.pt" <<'PY'
import sys

import torch

checkpoint = torch.load(sys.argv[1], map_location="cpu", weights_only=False)
for name, tensor in (checkpoint.get("generator") or {}).items():
    checkpoint["model"][f"generator.{name}"] = tensor
checkpoint["generator"] = {}
torch.save(checkpoint, sys.argv[2])
PY

# ... and its onmt_translate never builds the source maps a copy generator reads (KeyError:
# 'src_map'): run the same entry point with the dataset iterator's copy switch on.
cat > "$W/translate_copy.py" <<'PY'
import sys

import onmt.inference_engine as engine
from onmt.bin.translate import main

build = engine.build_dynamic_dataset_iter
engine.build_dynamic_dataset_iter = lambda *args, **kwargs: build(*args, **{**kwargs, "copy": True})
sys.exit(main())
PY
for beam in 1 5; do
  "$V/python" "$W/translate_copy.py" -model "$W/decode.pt" -src "$W/data/test.src" -output "$W/test.beam$beam.sp" \
    -beam_size $beam -max_length 100 -batch_size 8000 -batch_type tokens -gpu -1 > "$W/translate.beam$beam.log" 2>&1 \
    || { echo "onmt_translate failed, see $W/translate.beam$beam.log" >&2; exit 1; }
  "$PY" -c "import sys, sentencepiece as spm; sp = spm.SentencePieceProcessor(model_file=sys.argv[1]); [print(sp.decode(line.split())) for line in sys.stdin]" \
    "$MODEL/tgt.spm.model" < "$W/test.beam$beam.sp" > "$W/test.beam$beam.txt"
  "$ROOT/.venv/bin/seq2seqkit" evaluate --hyp "$W/test.beam$beam.txt" --ref "$RAW/test.tgt" \
    --metric rougeL --metric rouge1 --metric rouge2 --metric repeated_trigrams > "$W/scores.beam$beam.txt"
done
steps=$(basename "$CKPT" .pt); steps=${steps#model_step_}
"$PY" - "$W" "$steps" "$train_s" <<'PY'
import json, sys
from pathlib import Path

work, steps, train_s = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
result = {"toolkit": "OpenNMT-py 3.5.1", "steps": steps, "train_s": train_s}
for beam in (1, 5):
    result[f"beam{beam}"] = (work / f"scores.beam{beam}.txt").read_text().strip()
print(json.dumps(result))
PY
