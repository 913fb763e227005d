"""How much `llamacpp/` log-likelihoods move with the way requests are grouped.

By default the backend serves a shared prefix (the question, for its choices) from the KV
cache and decodes only what follows; llama.cpp's CPU kernels are not split-invariant, so
the numbers differ by float rounding from scoring each request from an empty cache
(`prefix_reuse=false`, which is what raw llama.cpp does per request). This prints the
largest difference and the number of changed picks on the first N `mmlu_sample` questions,
scored as the task does (one-token letters) or, with --full-text, with each choice's text
as the continuation (several tokens, decoded after the cached question).

    python bench/split_variance.py --limit 100 [--full-text]
"""

from __future__ import annotations

import argparse
import time

from llmassay.backends.llamacpp import LlamaCppBackend
from llmassay.tasks.loader import load_task
from llmassay.types import LoglikelihoodRequest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--full-text", action="store_true", help="continuations are the choice texts")
    args = parser.parse_args()
    task = load_task("mmlu_sample")
    samples = task.samples[: args.limit]
    reqs = [
        LoglikelihoodRequest(s.prompt, task.target_delimiter + str(c))
        for s in samples
        for c in (s.doc["choices"] if args.full_text else s.choices or [])
    ]
    scores = {}
    for reuse in (True, False):
        backend = LlamaCppBackend(args.model, prefix_reuse=reuse)
        start = time.perf_counter()
        scores[reuse] = [r.logprob for r in backend.loglikelihood(reqs)]
        print(f"prefix_reuse={reuse}: {time.perf_counter() - start:.1f} s, {backend.tokens_evaluated} tokens decoded", flush=True)
        backend.llm.close()
    deltas = [abs(a - b) for a, b in zip(scores[True], scores[False])]
    picks, k = 0, 0
    for s in samples:
        n = len(s.doc["choices"] if args.full_text else s.choices or [])
        a, b = scores[True][k : k + n], scores[False][k : k + n]
        picks += a.index(max(a)) != b.index(max(b))
        k += n
    print(
        f"{len(samples)} questions, {len(reqs)} requests: max |Δ| {max(deltas):.3g} nats, "
        f"mean |Δ| {sum(deltas) / len(deltas):.3g}, identical {sum(d == 0 for d in deltas)}/{len(reqs)}, "
        f"changed picks {picks}/{len(samples)}"
    )


if __name__ == "__main__":
    main()
