#!/usr/bin/env bash
# Reproduces docs/llm-results.md: each packaged model served by llama-server (scripts/llama-server-build.sh),
# `driftwise eval --reasoner llm` on the visible scenarios, then on the extra sets with the 0.5B, one run file
# per (model, set) in OUT. Runs are sequential (one model at a time on the cores); a chunk that finishes keeps
# its file, so a run stopped early still reports what it did.
#   scripts/llm-results.sh OUT [STEP...]   STEP: q05a1 q05b1 q05a2 q05b2 (visible halves, repeats 1, 2) smol
#   q15a q15b extra1..3 (default: all, in that order)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: scripts/llm-results.sh OUT [STEP...]}
shift || true
STEPS=("${@:-q05a1 q05b1 smol q05a2 q05b2 q15a q15b extra1 extra2 extra3}")
BIN=.venv/bin
PORT=${LLM_PORT:-8690}
SERVER=$(PYTHON=$BIN/python scripts/llama-server-build.sh)
mkdir -p "$OUT"

# Scenario folders of symlinks: the visible set in halves, the first 30 of the extra sets in tens.
CHUNKS=$(mktemp -d)
trap 'rm -rf "$CHUNKS"' EXIT
chunk() {  # name count files...
  local name=$1 count=$2; shift 2
  printf '%s\n' "$@" | sort | split -l "$count" -d - "$CHUNKS/$name."
  for list in "$CHUNKS/$name".??; do
    mkdir "$list.d" && while read -r f; do ln -s "$PWD/$f" "$list.d/"; done <"$list"
  done
}
chunk visible 6 scenarios/*.yaml
chunk extra 10 $(ls tests/scenarios_extra*/*.yaml | sort | head -30)

run() {  # model repeat folder name
  local model=$1 repeat=$2 folder=$3 name=$4 env_file="$OUT/$4.env"
  $BIN/driftwise llm-local --model "$model" --server "$SERVER" --port "$PORT" >"$env_file" 2>"$OUT/$name.server.log" &
  local pid=$!
  for _ in $(seq 600); do  # loading a model: bounded at 10 minutes
    grep -q "llama-server ready" "$OUT/$name.server.log" && break
    kill -0 "$pid" 2>/dev/null || { echo "llama-server for $model ended: $OUT/$name.server.log" >&2; return 1; }
    sleep 1
  done
  echo "$(date -u +%FT%TZ) $name: $model, K=$repeat, $folder" >&2
  env $(cat "$env_file") $BIN/driftwise eval "$folder" --reasoner llm --repeat "$repeat" --json "$OUT/$name.json" \
    >"$OUT/$name.txt" 2>"$OUT/$name.eval.log" || echo "$name: eval failed ($OUT/$name.eval.log)" >&2
  kill "$pid"; wait "$pid" || true
}

# K = 2 for the 0.5B is two K = 1 passes (rep 1, rep 2): on a busy machine a stopped run keeps its first pass.
for step in ${STEPS[*]}; do
  case $step in
    q05a1|q05b1|q05a2|q05b2)
      half=$([[ $step == q05a* ]] && echo 00 || echo 01)
      run qwen2.5-coder-0.5b 1 "$CHUNKS/visible.$half.d" "visible$((10#$half + 1))-rep${step: -1}-qwen05" ;;
    q15a) run qwen2.5-coder-1.5b 1 "$CHUNKS/visible.00.d" visible1-qwen15 ;;
    q15b) run qwen2.5-coder-1.5b 1 "$CHUNKS/visible.01.d" visible2-qwen15 ;;
    smol) run smollm2-135m 1 scenarios visible-smollm2 ;;
    extra1|extra2|extra3) run qwen2.5-coder-0.5b 1 "$CHUNKS/extra.0$((${step#extra} - 1)).d" "$step-qwen05" ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
  esac
done
