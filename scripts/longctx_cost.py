"""Count what a needle or position grid costs before running it, and estimate its time.

    python scripts/longctx_cost.py --model smollm2-135m --probe needle --limit 20 \
        -P lengths=256,512,1024,2048 -P depths=0,0.25,0.5,0.75,1

Runs the probe against a backend that only tokenizes (the GGUF's vocabulary, no weights), so
the prompts are exactly a real run's; prints requests, prompt tokens, tokens left to prefill
after shared prefixes, the answers' token budget, and the time range at the idle rates in
`llmassay.longctx.cost.RATES` (prefill only … prefill + every answer at its full budget).
"""

from __future__ import annotations

import argparse
import sys

from llmassay.backends.chat import _gguf_file_says_chat
from llmassay.longctx.cost import PER_POSITION, RATES
from llmassay.probes._grid_cost import grid_cost
from llmassay.probes import probe_class
from llmassay.tasks.loader import load_task
from llmassay.tokens.tokenizers import load_tokenizer
from llmassay.types import LlmassayError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m", help="llamacpp alias or .gguf path")
    ap.add_argument("--probe", default="needle", choices=("needle", "position"))
    ap.add_argument("--tasks", default="", help="default: needle_sample / position_sample")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--n-ctx", type=int, default=2048, help="the window the run loads (--model-args n_ctx)")
    ap.add_argument("-P", action="append", default=[], metavar="KEY=VALUE", help="a probe option")
    ap.add_argument("--rates", default="", help="PREFILL,DECODE tok/s (default: RATES for a bundled model)")
    args = ap.parse_args(argv)
    try:
        options = dict(kv.split("=", 1) for kv in args.P)
        task = load_task(args.tasks or f"{args.probe}_sample")
        task = task.limited(args.limit) if args.limit else task
        chat = _gguf_file_says_chat(args.model)
        cost = grid_cost(probe_class(args.probe)(), task, load_tokenizer(f"llamacpp/{args.model}").encode, args.n_ctx,
                         options, chat)
        prefill_rate, decode_rate = (tuple(float(x) for x in args.rates.split(",")) if args.rates
                                     else RATES.get(args.model, (0.0, 0.0)))
    except (LlmassayError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.model} {args.probe} ({'chat' if chat else 'raw'}), {len(task.samples)} items: {cost.requests} requests, "
          f"{cost.prompt_tokens:,} prompt tokens, {cost.prefill_tokens:,} to prefill after shared prefixes "
          f"({1 - cost.prefill_tokens / max(cost.prompt_tokens, 1):.0%} shared), answers ≤ {cost.answer_tokens:,} tokens")
    if prefill_rate and decode_rate:
        per_position = PER_POSITION.get(args.model, 0.0)
        low, high = cost.seconds(prefill_rate, decode_rate, per_position)
        print(f"at {prefill_rate:g} tok/s prefill, {decode_rate:g} tok/s decode (short prompts), attention "
              f"{per_position:.2g} per position: {low / 60:.1f}–{high / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
