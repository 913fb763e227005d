"""Watermarked generation on a real model, detected from the tokenizer alone."""

from __future__ import annotations

import pytest

from llmassay.types import GenerateRequest
from llmassay.watermark import WatermarkConfig, detect_ids
from llmassay.watermark.tokenizers import load_tokenizer

PROMPT = (("user", "Write a short story about a village by a river."),)


@pytest.mark.slow
def test_llamacpp_generation_detects_with_only_the_gguf_vocabulary(smollm2):
    cfg = WatermarkConfig("cross-backend", scheme="selfhash")
    tok = load_tokenizer("llamacpp/smollm2-135m")  # vocab_only: no weights
    plain, marked = smollm2.generate([
        GenerateRequest(messages=PROMPT, max_tokens=80, temperature=0.7, seed=1),
        GenerateRequest(messages=PROMPT, max_tokens=80, temperature=0.7, seed=1, watermark=cfg.spec()),
    ])
    z_marked = detect_ids(tok.encode(marked.text), cfg).z
    z_plain = detect_ids(tok.encode(plain.text), cfg).z
    assert z_marked > 4 > z_plain
    assert detect_ids(tok.encode(marked.text), WatermarkConfig("another key")).z < 4
