#!/bin/bash
# Every efficiency timing in one go, for a quiet machine: on the project machine run it as
#   /work/bin/quietcore bench/efficiency_all.sh
# (alone on one core, one llama.cpp thread). Writes its sections of BENCHMARKS.md and the
# quantisation sweep (with decode tokens/s and energy per variant) under $OUT/quant.
# Quality figures (KL, accuracy, brittleness) are deterministic; a sweep run before into the
# same $OUT fills the request cache, so here only the timed parts cost time.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
OUT=${OUT:-runs/efficiency-bench}
export PYTHONPATH=src:tests:bench
$PY bench/efficiency_models.py --models smollm2-135m,gemma3-270m --repeats 3 --limit 20 --write
$PY -c 'from llmassay.cli import main; main()' quantize-sweep --model smollm2-135m --model-args n_threads=1 \
    --task mmlu_sample --limit 40 --efficiency --output-path "$OUT/quant"
$PY bench/efficiency_speculative.py --model smollm2-135m --n 10 --max-tokens 64 --repeats 3 --write
$PY bench/efficiency_loadtest.py --server smollm2-135m --repeats 3 --requests 16 --rate 1,2 \
    --output-path "$OUT/loadtest" --write
