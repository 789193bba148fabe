#!/usr/bin/env bash
# `make bench-llm`: provision the local model, serve it with llama.cpp's OpenAI-compatible server, run
# the crash benchmark with templates then the LLM fixer (templates-only figures from the same run),
# write bench/results/llm/{llm.json,report.md,server.log}, and stop the server.
# Extra arguments go to `autofix bench` (e.g. --case ID).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
CACHE="${AUTOFIX_LLM_CACHE:-$HOME/.cache/autofix-llm}"
MODEL="$CACHE/model/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
PORT="${AUTOFIX_BENCH_LLM_PORT:-8765}"
OUT="${AUTOFIX_BENCH_LLM_OUT:-$root/bench/results/llm}"
AUTOFIX="${AUTOFIX_BIN:-$root/.venv/bin/autofix}"
PY="${AUTOFIX_PY:-$root/.venv/bin/python}"
mkdir -p "$OUT"

bash "$here/provision.sh"

# OMP_WAIT_POLICY=PASSIVE: on a shared 2-core machine, OpenMP threads that spin between tokens lose
# their cores to other jobs and generation fell to under 1 token/s here; sleeping threads keep 5-9.
OMP_WAIT_POLICY=PASSIVE "$CACHE/venv/bin/python" -m llama_cpp.server --model "$MODEL" --host 127.0.0.1 --port "$PORT" \
  --n_ctx 8192 --n_threads 2 > "$OUT/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 1 180); do
  if "$PY" -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$PORT/v1/models', timeout=2)" 2>/dev/null; then
    break
  fi
  kill -0 "$server" 2>/dev/null || { echo "bench-llm: the server exited, see $OUT/server.log" >&2; exit 3; }
  sleep 1
done

export AUTOFIX_LLM_BASE_URL="http://127.0.0.1:$PORT/v1"
export AUTOFIX_LLM_MODEL="qwen2.5-coder-1.5b-instruct-q4_k_m"
# The [llm] section for the run (JSON): 3 attempts, the retries drawing 2 samples each.
export AUTOFIX_LLM="${AUTOFIX_LLM:-{\"attempts\": 3, \"samples\": 2}}"
started=$(date +%s)
set +e
"$AUTOFIX" bench --llm --json --keep "$OUT/work" "$@" > "$OUT/llm.json"
status=$?
set -e
echo "bench-llm: $(( $(date +%s) - started )) s wall" | tee "$OUT/wall.txt"
"$PY" "$here/report.py" "$OUT/llm.json" | tee "$OUT/report.md"
exit $status
