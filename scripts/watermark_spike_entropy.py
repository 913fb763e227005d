"""The spike-entropy bound for the README: mean spike entropy of SmolLM2's next-token
distributions along its own plain sampled texts from a `--probe watermark` run, the green
fraction that bound guarantees, and the T that reaches z = 4 at that fraction.

    .venv/bin/python scripts/watermark_spike_entropy.py RUN_DIR [--model smollm2-135m] [--gamma 0.25] [--delta 2]

RUN_DIR is the --output-path of `llmassay run --tasks prose_continue --probe watermark`.
The distributions come from llama.cpp's logits with the prompt rendered by the GGUF's own
chat template, as the generations were made.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from llama_cpp import Llama
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from llmassay.models import resolve_model_path
from llmassay.tasks.loader import load_task
from llmassay.watermark import tokens_needed
from llmassay.watermark.entropy import green_bound, spike_entropy


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--gamma", type=float, default=0.25)
    parser.add_argument("--delta", type=float, default=2.0)
    args = parser.parse_args()
    samples = sorted(Path(args.run_dir).rglob("samples_prose_continue_*.jsonl"))[-1]
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    llm = Llama(model_path=str(resolve_model_path(args.model)), n_ctx=1024, logits_all=True, verbose=False)
    template = Jinja2ChatFormatter(llm.metadata["tokenizer.chat_template"], eos_token="<|im_end|>", bos_token="<|im_start|>")
    prompts = {s.id: s.prompt for s in load_task("prose_continue").samples}
    per_text = []
    for row in rows:
        prompt = template(messages=[{"role": "user", "content": prompts[row["id"]]}]).prompt
        context = llm.tokenize(prompt.encode(), add_bos=False, special=True)
        text = llm.tokenize(row["texts"]["plain_sampled"].encode(), add_bos=False, special=False)
        llm.reset()
        llm.eval(context + text)
        logits = np.asarray(llm.scores[len(context) - 1 : len(context) + len(text) - 1])
        per_text.append(float(spike_entropy(logits, args.gamma, args.delta).mean()))
    s = float(np.mean(per_text))
    g = green_bound(s, args.gamma, args.delta)
    print(json.dumps({"texts": len(per_text), "mean_spike_entropy": s, "green_fraction_bound": g,
                      "tokens_for_z4_at_bound": tokens_needed(g, args.gamma)}, indent=1))


if __name__ == "__main__":
    main()
