"""A request field added later must not invalidate caches written before it existed."""

from dataclasses import asdict

from llmassay.engine.cache import LATE_FIELDS, request_key
from llmassay.types import GenerateRequest


def test_an_unset_late_field_leaves_the_key_as_before_it_existed():
    req = GenerateRequest(prompt="2+2=", max_tokens=4)
    fields = asdict(req)
    before = {k: v for k, v in fields.items() if k not in LATE_FIELDS}  # the request as older versions saw it
    assert request_key({"b": 1}, "generate", fields) == request_key({"b": 1}, "generate", before)


def test_a_set_late_field_changes_the_key():
    plain = asdict(GenerateRequest(prompt="2+2=", max_tokens=4))
    marked = asdict(GenerateRequest(prompt="2+2=", max_tokens=4, watermark="g0.25-d2-prev-k1"))
    assert request_key({"b": 1}, "generate", plain) != request_key({"b": 1}, "generate", marked)
