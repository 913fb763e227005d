"""People in the loop: a local review app whose labels are stored next to the run, and the
agreement between reviewers and with the judge (Cohen's κ with a bootstrap CI,
Krippendorff's α for more reviewers or missing labels)."""

from __future__ import annotations

from llmassay.review.agreement import agreement
from llmassay.review.queue import ReviewItem, load_queue
from llmassay.review.store import LabelStore

__all__ = ["LabelStore", "ReviewItem", "agreement", "load_queue"]
