"""Watermarked generation: the green-list bias as each backend's logits processor.

A request carries its watermark as `GenerateRequest.watermark` (a `WatermarkConfig.spec()`
string), so watermarked and plain requests are cached apart and the backend needs one line
to honour it. The bias reads only token ids, so llama.cpp and transformers mark the same
ids the same way.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from llmassay.watermark.scheme import GreenList, WatermarkConfig


@lru_cache(maxsize=8)
def green_list(spec: str) -> GreenList:
    return GreenList(WatermarkConfig.from_spec(spec))


def llamacpp_processor(spec: str) -> Any:
    """A `logits_processor` for llama-cpp-python's create_completion / create_chat_completion."""
    from llmassay.backends import llama_internals

    return llama_internals.logits_processors(green_list(spec).bias)


def hf_processor(spec: str) -> Any:
    """A transformers LogitsProcessor adding delta to each row's green tokens."""
    import torch
    from transformers import LogitsProcessor

    green = green_list(spec)

    class _Watermark(LogitsProcessor):  # type: ignore[misc]
        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
            ids = input_ids.cpu().numpy()
            masks = np.stack([green.mask(row, scores.shape[-1]) for row in ids])
            return scores + torch.from_numpy(masks).to(scores.device, scores.dtype) * green.cfg.delta

    return _Watermark()
