# Sourced by the bench scripts whose rows are "name|recipe|overrides" (overrides split at spaces):
# train_row trains one into $OUT/NAME with $S2S, unless a run trained to its end is there already
# (an interrupted one is trained again), then prints the row's header and its last log line.
train_row() {
  local name=$1 recipe=$2 overrides=$3 item
  if ! grep -qs "finished at step" "$OUT/$name/train.log"; then
    rm -rf "${OUT:?}/$name"
    local sets=()
    for item in $overrides; do sets+=(--set "$item"); done
    $S2S train "$recipe" --output "$OUT/$name" "${sets[@]}" >/dev/null
  fi
  echo "== $name ($recipe${overrides:+ with $overrides})"
  grep "finished at step" "$OUT/$name/train.log" | tail -1
}
