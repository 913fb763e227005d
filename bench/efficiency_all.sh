#!/bin/bash
# Every efficiency timing in one go, for a quiet machine: on the project machine run it as
#   bench/quietcore.sh bench/efficiency_all.sh
# (alone on one core, one llama.cpp thread). Needs the quantised variants of a quality sweep
# made before, on any machine (its figures do not depend on load):
#   llmassay quantize-sweep --model smollm2-135m --model-args n_threads=1 --task mmlu_sample --limit 40 \
#       --output-path $OUT/qs
# Writes its sections of docs/benchmarks.md and, per variant, a run with accuracy and the efficiency
# probe under $OUT/quant-speed, with the Pareto pages (accuracy vs decode tokens/s, vs energy).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
OUT=${OUT:-runs/efficiency-bench}
export PYTHONPATH=src:tests:bench
llmassay() { $PY -c 'from llmassay.cli import main; main()' "$@"; }

# 1. Both bundled models: pp512/tg128 and the efficiency probe, 3 repeats each.
$PY bench/efficiency_models.py --models smollm2-135m,gemma3-270m --repeats 3 --limit 20 --write

# 2. The quantised variants: pp512/tg128 (3 repeats), then accuracy + efficiency probe (one run, 40 items).
SOURCE=$($PY -c "from llmassay.models import resolve_model_path as r; print(r('smollm2-135m'))")
TYPES="q8_0 q5_k_m q4_k_m q3_k_m q2_k"
PATHS=$SOURCE; LABELS=source
for t in $TYPES; do PATHS="$PATHS,$(ls "$OUT"/qs/variants/*-$t.gguf)"; LABELS="$LABELS,$t"; done
$PY bench/efficiency_models.py --models "$PATHS" --labels "$LABELS" --no-probe --repeats 3 \
    --section efficiency_quant_speed --title "Speed of the quantised variants of SmolLM2-135M" --write
RUNS=""
IFS=, read -ra P <<< "$PATHS"; IFS=, read -ra L <<< "$LABELS"
for i in "${!P[@]}"; do
  llmassay run --model "llamacpp/${P[$i]}" --model-args n_threads=1 --tasks mmlu_sample --probe accuracy,efficiency \
      --limit 40 -P efficiency.max_tokens=32 -P efficiency.warmup=2 --output-path "$OUT/quant-speed/${L[$i]}" > /dev/null
  RUNS="$RUNS $OUT/quant-speed/${L[$i]}"
done
llmassay pareto $RUNS --task mmlu_sample --labels "$LABELS" --cost efficiency.decode_tps \
    --output-path "$OUT/quant-speed/pareto-speed.html"
llmassay pareto $RUNS --task mmlu_sample --labels "$LABELS" --cost efficiency.energy_wh_per_1k \
    --output-path "$OUT/quant-speed/pareto-energy.html"

# 3. Prompt lookup vs plain, 3 repeats.
$PY bench/efficiency_speculative.py --model smollm2-135m --n 10 --max-tokens 64 --repeats 3 --write

# 4. llama_cpp.server under load, 3 repeats.
$PY bench/efficiency_loadtest.py --server smollm2-135m --repeats 3 --requests 16 --rate 1,2 \
    --output-path "$OUT/loadtest" --write
# The c = 8 level again with 48 requests: Little's-law edge effects shrink with more requests.
$PY bench/efficiency_loadtest.py --server smollm2-135m --repeats 3 --requests 48 --concurrency 8 --rate "" \
    --output-path "$OUT/loadtest-long" --section efficiency_loadtest_server_long --write

# 5. The efficiency probe through the openai backend (streamed TTFT, ITL, TPOT) against llama_cpp.server.
$PY bench/efficiency_served.py --model smollm2-135m --repeats 3 --limit 20 --write
