"""Bias and safety measurement: detectors validated on labelled sets, and the
prevalence correction (Rogan–Gladen) that their measured error calls for.

The probes (`probes/injection.py`, …) read model outputs through these detectors; a rate a
detector reports is only as good as the detector, so every detector ships with a
labelled set and its sensitivity and specificity are part of the result.
"""

from llmassay.safety.detectors import (
    CanaryDetector,
    DetectorValidation,
    RefusalDetector,
    hit_at_k,
    item_rate,
    rogan_gladen,
    validate,
)
from llmassay.metrics import paired_gap  # as before: safety's callers import it from here

validate_detector = validate  # the name llmassay re-exports

__all__ = [
    "CanaryDetector",
    "DetectorValidation",
    "RefusalDetector",
    "hit_at_k",
    "item_rate",
    "paired_gap",
    "rogan_gladen",
    "validate",
    "validate_detector",
]
