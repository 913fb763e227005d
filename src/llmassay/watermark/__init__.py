"""Kirchenbauer green-list watermarking with a portable keyed hash: generation through a
logits processor (llamacpp, hf), detection from token ids alone, null calibration and attacks."""

from llmassay.watermark.detect import (
    Detection,
    detect_ids,
    flagged,
    green_needed,
    predicted_z,
    thresholds,
    tokens_needed,
    z_threshold,
)
from llmassay.watermark.scheme import SCHEMES, GreenList, WatermarkConfig

__all__ = [
    "SCHEMES",
    "Detection",
    "GreenList",
    "WatermarkConfig",
    "detect_ids",
    "flagged",
    "green_needed",
    "predicted_z",
    "thresholds",
    "tokens_needed",
    "z_threshold",
]
