#!/usr/bin/env bash
# Check the release artefacts as a user would meet them: build the sdist and the wheel (from a
# snapshot of the working tree: tracked and untracked, not ignored, files), run `twine check` on
# both, install the wheel with no extras into a fresh venv outside the checkout (torch 2.13.0, the
# CPU build, first), and from a folder outside the checkout run `seq2seqkit --version`, `recipes`,
# `train g2p` (one minute), `generate`, `export --format onnx` (must fail with one line naming
# the onnx extra), then install the [onnx] extra, export again (must succeed) and run the exported
# runtime.py. The version printed and installed must be the one the source states.
# One PASS/FAIL line per check; stops with exit status 1 at the first failure. Takes about three
# minutes on 2 CPU cores, half of it the one-minute training run, most of the rest pip installs.
# Usage: bash scripts/check_wheel.sh     (PYTHON=python3.11 picks the interpreter of the fresh venv)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
PYTHON=${PYTHON:-python3}
DEV_PYTHON=$repo/.venv/bin/python
TORCH_PIN="torch==2.13.0"  # the CPU build; an unpinned torch pulls a multi-GB CUDA build

work=$(mktemp -d "${TMPDIR:-/tmp}/seq2seqkit-check-wheel.XXXXXX")
trap 'rm -rf "$work"' EXIT
log=$work/log  # each step's output; shown when the step fails

pass() { printf 'PASS  %s\n' "$1"; }
fail() {
  printf 'FAIL  %s\n' "$1"
  shift
  local detail
  for detail in "$@"; do printf '      %s\n' "$detail"; done
  if [ -s "$log" ]; then
    printf '      --- last lines of its output ---\n'
    tail -n 25 "$log" | sed 's/^/      /'
  fi
  exit 1
}
# run CMD... with its stdout and stderr in $log; FAIL with MESSAGE when it exits non-zero
step() {
  local message=$1
  shift
  "$@" >"$log" 2>&1 || fail "$message" "exit status $? from: $*"
}

# the version as the source states it, in the module that pyproject.toml's dynamic version names
version=$("$PYTHON" - <<'PY'
import pathlib, re, tomllib
attr = tomllib.loads(pathlib.Path("pyproject.toml").read_text())["tool"]["setuptools"]["dynamic"]["version"]["attr"]
module = pathlib.Path("src", *attr.split(".")[:-1])
path = module / "__init__.py" if module.is_dir() else module.with_suffix(".py")
print(re.search(r"^__version__\s*=\s*[\"']([^\"']+)[\"']", path.read_text(), re.M)[1])
PY
) || fail "read the version named by pyproject.toml's tool.setuptools.dynamic.version"

# --- 1. sdist and wheel ------------------------------------------------------------------------
[ -x "$DEV_PYTHON" ] || fail "dev venv" "no $DEV_PYTHON: run scripts/setup.sh first"
if ! "$DEV_PYTHON" -c 'import build, twine' >/dev/null 2>&1; then
  step "install build and twine into .venv" \
    "$DEV_PYTHON" -m pip install --quiet --disable-pip-version-check "build>=1.2" "twine>=5"
fi

# Build from a snapshot, not the checkout itself: setuptools would write src/*.egg-info into the
# checkout and read a stale SOURCES.txt found there into the sdist.
src=$work/src
mkdir "$src"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' file; do
      if [ -e "$file" ]; then printf '%s\0' "$file"; fi  # skip tracked files deleted here
    done \
    | tar --null -T - -cf - | tar -C "$src" -xf -
else
  tar --exclude=.venv --exclude=.git -cf - . | tar -C "$src" -xf -
fi

dist=$work/dist
step "python -m build (sdist and wheel)" "$DEV_PYTHON" -m build --outdir "$dist" "$src"
shopt -s nullglob
sdists=("$dist"/seq2seqkit-*.tar.gz)
wheels=("$dist"/seq2seqkit-*-py3-none-any.whl)
shopt -u nullglob
if [ ${#sdists[@]} -ne 1 ] || [ ${#wheels[@]} -ne 1 ]; then
  fail "python -m build (sdist and wheel)" "expected one sdist and one pure-Python wheel in $dist:" "$(ls "$dist")"
fi
wheel=${wheels[0]}
case $(basename "$wheel") in
  "seq2seqkit-$version-"*) ;;
  *) fail "python -m build (sdist and wheel)" "$(basename "$wheel") does not carry version $version" ;;
esac
pass "python -m build: $(basename "${sdists[0]}"), $(basename "$wheel")"
step "twine check --strict (sdist and wheel)" "$DEV_PYTHON" -m twine check --strict "${sdists[0]}" "$wheel"
pass "twine check --strict (sdist and wheel)"

# --- 2. a fresh venv outside the checkout, the wheel with no extras ----------------------------
venv=$work/venv
step "create a fresh venv with $PYTHON" "$PYTHON" -m venv "$venv"
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
step "pip install $TORCH_PIN" "${pip[@]}" "$TORCH_PIN"
step "pip install the wheel (no extras)" "${pip[@]}" "$wheel"
torch_now=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("torch"))')
case $torch_now in
  2.13.0 | 2.13.0+*) ;;
  *) fail "pip install the wheel (no extras)" "it replaced torch 2.13.0 with torch $torch_now" ;;
esac
pass "pip install $TORCH_PIN, then the wheel with no extras (torch stays $torch_now)"

# as a user would: the venv's commands first on PATH, in a folder with no source tree
export PATH="$venv/bin:$PATH"
hash -r
unset PYTHONPATH PYTHONHOME PYTHONSTARTUP VIRTUAL_ENV
cd "$work"
purelib=$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
module=$(python -c 'import seq2seqkit; print(seq2seqkit.__file__)' 2>"$log") \
  || fail "import seq2seqkit from the installed wheel"
case $module in
  "$purelib"/*) ;;
  *) fail "import seq2seqkit from the installed wheel" "imported $module, not from $purelib" ;;
esac
[ "$(command -v seq2seqkit)" = "$venv/bin/seq2seqkit" ] \
  || fail "seq2seqkit on PATH" "found $(command -v seq2seqkit || echo nothing), not $venv/bin/seq2seqkit"
installed=$(python -c 'import importlib.metadata as m; print(m.version("seq2seqkit"))')
[ "$installed" = "$version" ] \
  || fail "import seq2seqkit from the installed wheel" "installed distribution is $installed, expected $version"
pass "import seq2seqkit from site-packages ($module)"

out=$(seq2seqkit --version 2>"$log") || fail "seq2seqkit --version" "exit status $?"
# e.g. "seq2seqkit 0.1.0": the last word of the line is the version
if [ "$(wc -l <<<"$out")" -ne 1 ] || [ "${out##* }" != "$version" ]; then
  fail "seq2seqkit --version" "printed '$out', expected one line ending in $version"
fi
pass "seq2seqkit --version: $out"

out=$(seq2seqkit recipes 2>"$log") || fail "seq2seqkit recipes" "exit status $?"
grep -qw g2p <<<"$out" || fail "seq2seqkit recipes" "no line mentions g2p:" "$out"
pass "seq2seqkit recipes: $(grep -c . <<<"$out") recipes, g2p among them"

model=$work/model
started=$SECONDS
timeout 20m seq2seqkit train g2p --output "$model" --set training.max_minutes=1 >"$log" 2>&1 \
  || fail "seq2seqkit train g2p (1 minute)" "exit status $? (124: still running after 20 minutes)"
if [ ! -d "$model" ] || [ -z "$(ls -A "$model")" ]; then
  fail "seq2seqkit train g2p (1 minute)" "exit status 0, but $model is missing or empty"
fi
for file in README.md format.json config.yaml model.safetensors; do
  [ -f "$model/$file" ] || fail "seq2seqkit train g2p (1 minute)" "$model has no $file"
done
grep -q "^# g2p" "$model/README.md" || fail "model card" "$model/README.md does not start with the recipe's name"
pass "seq2seqkit train g2p --set training.max_minutes=1 ($((SECONDS - started)) s; model card and format.json written)"

# FILE holds one line per input word, each matching PATTERN, and nothing else
lines_ok() { [ "$(wc -l <"$1")" -eq ${#words[@]} ] && [ "$(grep -cE "$2" "$1")" -eq ${#words[@]} ]; }
# the outputs, one per word, for a PASS line: hello -> "HH AH L OW" (-0.1234), world -> ...
shown() {
  paste <(printf '%s\n' "${words[@]}") "$1" \
    | awk -F '\t' '{s = s sep $1 " -> \"" $2 "\"" (NF > 2 ? " (" $3 ")" : ""); sep = ", "} END {print s}'
}
words=(hello world seq)
# --scores: "TEXT<TAB>LOG-PROBABILITY", a non-empty line per input even where the text is empty,
# as it is for every word after one minute on a slow CPU (WER 100 after ~20 steps on 2 cores)
printf '%s\n' "${words[@]}" | timeout 5m seq2seqkit generate "$model" --scores >"$work/stdout" 2>"$log" \
  || fail "seq2seqkit generate" "exit status $?"
lines_ok "$work/stdout" $'\t''-?[0-9]+(\.[0-9]+)?$' \
  || fail "seq2seqkit generate" "expected ${#words[@]} lines TEXT<TAB>SCORE for ${words[*]}, got:" "$(cat "$work/stdout")"
pass "seq2seqkit generate --scores: $(shown "$work/stdout")"

# --- 3. export: one line naming the extra without it, a model with it --------------------------
python -c 'import importlib.util as u, sys; sys.exit(any(u.find_spec(m) for m in ("onnx", "onnxruntime")))' \
  || fail "seq2seqkit export without the onnx extra" "onnx or onnxruntime is installed without the extra"
rc=0
timeout 5m seq2seqkit export "$model" --format onnx --output "$work/onnx" >"$work/stdout" 2>"$log" || rc=$?
lines=$(wc -l <"$log")
if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ] || [ "$lines" -ne 1 ] || ! grep -qF "pip install 'seq2seqkit[onnx]'" "$log"; then
  fail "seq2seqkit export without the onnx extra" \
    "expected a non-zero exit and one stderr line with: pip install 'seq2seqkit[onnx]'" \
    "got exit status $rc and $lines stderr lines"
fi
pass "seq2seqkit export without the onnx extra: $(cat "$log")"

step "pip install the wheel with [onnx]" "${pip[@]}" "${wheel}[onnx]"
pass "pip install the wheel with [onnx]"
rm -rf "$work/onnx"
step "seq2seqkit export --format onnx with the onnx extra" \
  timeout 10m seq2seqkit export "$model" --format onnx --output "$work/onnx"
shopt -s nullglob
graphs=("$work"/onnx/*.onnx)
shopt -u nullglob
[ ${#graphs[@]} -gt 0 ] || fail "seq2seqkit export --format onnx with the onnx extra" "no .onnx file in the output"
pass "seq2seqkit export --format onnx with the onnx extra: $(cd "$work/onnx" && echo *.onnx)"

# the exported runtime, which needs onnxruntime and no PyTorch, on the same words
printf '%s\n' "${words[@]}" | timeout 5m python "$work/onnx/runtime.py" "$work/onnx" >"$work/stdout" 2>"$log" \
  || fail "onnx runtime.py" "exit status $?"
lines_ok "$work/stdout" '' \
  || fail "onnx runtime.py" "expected ${#words[@]} lines for ${words[*]}, got:" "$(cat "$work/stdout")"
pass "onnx runtime.py: $(shown "$work/stdout")"

echo "all checks passed: seq2seqkit $version"
