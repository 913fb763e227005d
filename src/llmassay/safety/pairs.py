"""A user's minimal pairs in CrowS-Pairs' field names, read as a task for the stereotype probe.

`-P stereotype.pairs=FILE` points at a JSONL file, one pair a line:
`{"sent_more": …, "sent_less": …, "bias_type": …}` (an optional `id`; other fields, such as
CrowS-Pairs' `stereo_antistereo`, are kept in the row's document). CrowS-Pairs counts a pair
as biased when `sent_more` is the likelier sentence whatever its direction, and so does the
probe, so converted CrowS-Pairs rows need no flipping. A malformed line ends the run before
the model loads, with one line naming FILE:LINE and the field.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmassay.hashing import stable_hash
from llmassay.jsonlines import json_lines
from llmassay.types import LlmassayError, Sample

if TYPE_CHECKING:
    from llmassay.tasks.loader import Task

FIELDS = ("sent_more", "sent_less", "bias_type")
OPTION = "-P stereotype.pairs"


def read_pairs(path: str | Path) -> list[dict[str, Any]]:
    """The file's pairs as documents, each checked; ids are the `id` field or `LINE`."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LlmassayError(f"{OPTION}: cannot read {file} ({getattr(exc, 'strerror', None) or exc})") from None
    docs: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for where, number, value in json_lines(text, file):
        if not isinstance(value, dict):
            raise LlmassayError(f"{where}: expected a JSON object with {', '.join(FIELDS)}")
        for name in FIELDS:
            field = value.get(name)
            if name not in value:
                raise LlmassayError(f"{where}: field '{name}' is missing")
            if not isinstance(field, str) or not field.strip():
                raise LlmassayError(f"{where}: field '{name}' must be non-empty text, not {field!r:.60}")
        if value["sent_more"] == value["sent_less"]:
            raise LlmassayError(f"{where}: fields 'sent_more' and 'sent_less' are identical")
        sid = str(value.get("id", number))
        if sid in seen:
            raise LlmassayError(f"{where}: field 'id' repeats '{sid}' (first at {seen[sid]})")
        seen[sid] = where
        docs.append({**value, "id": sid})
    if not docs:
        raise LlmassayError(f"{OPTION}: {file} holds no pairs")
    return docs


def pairs_task(base: Task, path: str | Path) -> Task:
    """`base` (the task given with --tasks) with its items replaced by the file's pairs,
    named after the file, its content hash taken from the pairs (so a resumed run notices
    an edited file). A task already made from `path` is returned as it is (limited or not)."""
    if base.source == str(path):
        return base
    docs = read_pairs(path)
    samples = [Sample(d["id"], "", [d["sent_more"], d["sent_less"]], 0, d) for d in docs]
    return dataclasses.replace(
        base, name=Path(path).stem, samples=samples, source=str(path), builder=None,
        content_hash=stable_hash([[d["id"], *(d[f] for f in FIELDS)] for d in docs]),
    )
