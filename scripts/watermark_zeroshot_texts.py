"""Model texts for `llmassay watermark zeroshot`: the plain sampled continuations that
`--probe watermark` writes (same requests, so the request cache shares them), as JSONL.

    .venv/bin/python scripts/watermark_zeroshot_texts.py --limit 48 --output texts.jsonl \
        [--model llamacpp/smollm2-135m] [--model-args n_threads=1] [--max-tokens 200] [--temperature 0.7]

Prompts: the bundled `prose_continue` task (openings of *News from Nowhere*, public domain),
through the model's chat template as the probe sends them. Then, e.g.:
`llmassay watermark zeroshot texts.jsonl --model llamacpp/gemma3-270m` scores them against
human spans of the same lengths from the rest of the book.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from llmassay.backends.base import load_backend, parse_model_args
from llmassay.engine.cache import RequestCache
from llmassay.engine.engine import Engine
from llmassay.home import llmassay_home
from llmassay.tasks.loader import load_task
from llmassay.types import GenerateRequest


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="llamacpp/smollm2-135m")
    parser.add_argument("--model-args", default="")
    parser.add_argument("--limit", type=int, default=48)
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    samples = load_task("prose_continue").samples[: args.limit]
    engine = Engine(load_backend(args.model, **parse_model_args(args.model_args)),
                    cache=RequestCache(llmassay_home() / "cache.sqlite"))
    reqs = [GenerateRequest(messages=(("user", s.prompt),), max_tokens=args.max_tokens,
                            temperature=args.temperature, seed=args.seed) for s in samples]
    texts = [g.text for g in engine.generate(reqs)]
    lines = [json.dumps({"id": s.id, "text": t}) + "\n" for s, t in zip(samples, texts) if t.strip()]
    Path(args.output).write_text("".join(lines), encoding="utf-8")
    print(f"{len(lines)} texts ({engine.stats.cache_hits} from the cache) -> {args.output}")


if __name__ == "__main__":
    main()
