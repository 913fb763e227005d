"""Benchmark — watermark detection speed on one core (issue #20 asks for >= 100k tokens/s).

Detection is hashing and counting: one HMAC-SHA256 per distinct context, a vectorised
splitmix64 per token. Measured on token ids (tokenisation is the tokenizer's cost, not
the detector's): the bundled human text's ids under the SmolLM2 vocabulary, repeated to
`--tokens`, scored as texts of `--text-tokens` tokens (per-text overhead included) and as
one long text, for both schemes; and random ids (every context distinct: the worst case).
BLAS and numpy threads are pinned to one.

    OMP_NUM_THREADS=1 .venv/bin/python bench/watermark_detect.py [--tokens 1000000] [--text-tokens 200] [--no-write]
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from _common import machine, write_section  # noqa: E402

from llmassay.watermark import WatermarkConfig, detect_ids  # noqa: E402
from llmassay.watermark.null import human_text  # noqa: E402
from llmassay.watermark.tokenizers import load_tokenizer  # noqa: E402


def rate(ids: np.ndarray, cfg: WatermarkConfig, text_tokens: int) -> float:
    """Tokens per second detecting `ids` cut into texts of `text_tokens` (0: one text)."""
    pieces = [ids] if not text_tokens else [ids[i : i + text_tokens] for i in range(0, len(ids), text_tokens)]
    start = time.perf_counter()
    for piece in pieces:
        detect_ids(piece, cfg)
    return len(ids) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=1_000_000)
    parser.add_argument("--text-tokens", type=int, default=200)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    human = np.asarray(load_tokenizer("llamacpp/smollm2-135m").encode(human_text()))
    corpora = {
        "News from Nowhere ids (SmolLM2 vocabulary)": np.resize(human, args.tokens),
        "random ids (all contexts distinct)": np.random.default_rng(0).integers(0, 49152, args.tokens),
    }
    lines = [
        "## Watermark detection speed (`bench/watermark_detect.py`)",
        "",
        f"{machine()}; one thread; {args.tokens:,} tokens per cell; tokens/s of `detect_ids` (token ids in, z out).",
        "",
        f"| ids | scheme | texts of {args.text_tokens} tokens | one long text |",
        "| --- | --- | ---: | ---: |",
    ]
    for name, ids in corpora.items():
        for cfg in (WatermarkConfig("bench", scheme="prev"), WatermarkConfig("bench", scheme="selfhash", h=4)):
            short, long = rate(ids, cfg, args.text_tokens), rate(ids, cfg, 0)
            label = cfg.scheme if cfg.scheme == "prev" else f"selfhash h={cfg.h}"
            lines.append(f"| {name} | {label} | {short:,.0f} | {long:,.0f} |")
    text = "\n".join(lines) + "\n\nReproduce: `OMP_NUM_THREADS=1 .venv/bin/python bench/watermark_detect.py`."
    print(text)
    if not args.no_write:
        write_section("watermark_detect", text)


if __name__ == "__main__":
    main()
