"""JSONL read line by line, each bad line a one-line error naming FILE:LINE.

Every command that takes a JSONL file from a user (factcheck answers, parallel text,
texts to detect, labelled sets) reads it through here, so they all name the line the
same way and none shows a traceback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from llmassay.types import LlmassayError


def json_lines(text: str, source: object) -> Iterator[tuple[str, int, Any]]:
    """("SOURCE:LINE", line number, parsed value) for each non-blank line of `text`."""
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{source}:{number}"
        try:
            value = json.loads(line)
        except (ValueError, RecursionError) as exc:  # RecursionError: "[[[[…" thousands deep
            raise LlmassayError(f"{where}: not JSON ({getattr(exc, 'msg', exc)})") from None
        yield where, number, value
