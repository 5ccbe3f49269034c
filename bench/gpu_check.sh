#!/usr/bin/env bash
# The GPU check of docs/scale.md, in under 8 minutes on one GPU:
#   1. the tests that have a CUDA variant (float32 parity of a CPU-trained model generating on the GPU);
#   2. the matched en-de model trained for 3 minutes on the GPU: target tokens/s and peak GPU memory;
#   3. test.en decoded greedy and with beam 5: sentences/s.
# Usage: bash bench/gpu_check.sh [OUT_DIR]   (needs a CUDA build of torch in .venv and ../shared/data)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/gpu-check}
PY=.venv/bin/python
DATA=${DATA:-../shared/data}
mkdir -p "$OUT"

"$PY" - <<'EOF'
import sys, torch
if not torch.cuda.is_available():
    sys.exit(f"gpu_check: torch {torch.__version__} sees no CUDA GPU; install a CUDA build of torch into .venv")
print(f"gpu_check: torch {torch.__version__}, {torch.cuda.get_device_name()}, bf16 {torch.cuda.is_bf16_supported()}")
EOF

echo "== 1. tests with a CUDA variant"
"$PY" -m pytest -p no:cacheprovider -q tests/unit/test_device.py

echo "== 2. matched en-de, 3 minutes of training on the GPU"
rm -rf "$OUT/ende"
.venv/bin/seq2seqkit train bench/matched-en-de.yaml --output "$OUT/ende" --device cuda \
  --set data.train="$DATA/debian/en-de/train" --set data.valid="$DATA/debian/en-de/valid" \
  --set data.test="$DATA/debian/en-de/test" --set training.max_minutes=3 \
  --set training.validate_every=1000000 --set training.evaluate_test=false >/dev/null
"$PY" - "$OUT/ende" <<'EOF'
import json, re, sys
from pathlib import Path
out = Path(sys.argv[1])
latest = (out / "checkpoints" / "latest").read_text().strip()
p = json.loads((out / "checkpoints" / latest / "state.json").read_text())["progress"]
memory = re.findall(r"peak GPU memory (\d+) MB", (out / "train.log").read_text())
print(f"training: {p['step']} steps, {p['target_tokens'] / p['elapsed']:,.0f} target tokens/s, "
      f"peak GPU memory {memory[-1] if memory else '?'} MB")
EOF

echo "== 3. decoding test.en on the GPU"
"$PY" - "$OUT/ende" "$DATA/debian/en-de/test" <<'EOF'
import statistics, sys, time
import torch
import seq2seqkit
from seq2seqkit.metrics import bleu
pipeline = seq2seqkit.load(sys.argv[1], device="cuda")
sources = open(f"{sys.argv[2]}.en", encoding="utf-8").read().splitlines()
references = open(f"{sys.argv[2]}.de", encoding="utf-8").read().splitlines()
for beam in (1, 5):
    times = []
    for _ in range(3):
        torch.cuda.synchronize()
        start = time.perf_counter()
        outputs = pipeline.generate(sources, beam=beam)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    rate = len(sources) / statistics.median(times)
    print(f"beam {beam}: {rate:,.0f} sentences/s (median of 3), BLEU {bleu([o.text for o in outputs], [[r] for r in references]):.2f}")
EOF
