# OpenNMT-py steps shared by the peer benchmarks (bench/summarize_peer.sh, bench/transformer_peer.sh),
# sourced with ROOT (the checkout) set: where things are, then the steps, which read W (the run's
# work folder, set by the benchmark).
SHARED=$(realpath -m "${SHARED:-$ROOT/../shared}")
export PEERS=$(realpath -m "${PEERS:-/tmp/peers}") BUDGET_S=${BUDGET_S:-1200}
export OMP_NUM_THREADS=${THREADS:-2} TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 PYTHONUNBUFFERED=1
PY=$ROOT/.venv/bin/python
V=$PEERS/onmt_venv/bin  # OpenNMT-py's own venv, installed by ../shared/peers/setup_venvs.sh

onmt_run_settings() {  # the config lines every peer run ends with: stopped by wall clock, not steps
  cat <<'YAML'
bucket_size: 20000
valid_batch_size: 4096
train_steps: 1000000
valid_steps: 500
save_checkpoint_steps: 100
keep_checkpoint: 3
report_every: 50
seed: 1234
num_workers: 0
world_size: 1
gpu_ranks: []
model_dtype: fp32
YAML
}

onmt_train_for_budget() {  # vocab, then $W/config.yaml trained for BUDGET_S seconds (peak RSS in train_time_v.txt)
  "$V/onmt_build_vocab" -config "$W/config.yaml" -n_sample -1 > "$W/build_vocab.log" 2>&1 \
    || { echo "onmt_build_vocab failed, see $W/build_vocab.log" >&2; exit 1; }
  local start rc
  start=$(date +%s)
  set +e
  /usr/bin/time -v -o "$W/train_time_v.txt" timeout -s INT -k 60 "$BUDGET_S" "$V/onmt_train" \
    -config "$W/config.yaml" -save_model "$W/model/model" -log_file "$W/train.log" > "$W/train.stdout.log" 2>&1
  rc=$?
  set -e
  [ $rc -eq 124 ] || [ $rc -eq 137 ] || { echo "onmt_train exited with $rc, see $W/train.stdout.log" >&2; tail -5 "$W/train.stdout.log" >&2; exit 1; }
  echo $(( $(date +%s) - start )) > "$W/train_seconds"
}

onmt_last_checkpoint() {  # prints the last checkpoint under $W/model that loads (a cut run may tear one)
  local c
  for c in $(ls -v "$W"/model/model_step_*.pt | tac); do
    if "$V/python" -c "import torch,sys; torch.load(sys.argv[1], map_location='cpu', weights_only=False)" "$c" 2>/dev/null; then echo "$c"; return; fi
  done
  echo "no loadable checkpoint in $W/model" >&2
  exit 1
}
