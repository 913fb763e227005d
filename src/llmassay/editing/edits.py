"""Edit requests `{subject, prompt, old, new}` (plus optional paraphrases and neighbourhood
prompts), read from JSONL with one-line errors naming the file, line and field."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmassay.jsonlines import json_lines
from llmassay.types import LlmassayError


@dataclass(frozen=True)
class Neighbour:
    """A prompt about something else whose true answer the edit should leave alone."""

    prompt: str
    true: str


@dataclass(frozen=True)
class Edit:
    subject: str
    prompt: str  # contains the subject (or "{}" where it goes); the object follows it
    old: str  # the current (true) object
    new: str  # the object the edit installs
    paraphrases: tuple[str, ...] = ()
    neighbourhood: tuple[Neighbour, ...] = ()
    id: str = ""

    @property
    def text(self) -> str:
        """The edit prompt with the subject filled in."""
        return self.prompt.replace("{}", self.subject)


def edit_from_doc(doc: dict[str, Any], where: str) -> Edit:
    """One edit from a JSON object; `where` ("FILE line N") starts every error."""
    if not isinstance(doc, dict):
        raise LlmassayError(f"{where}: expected a JSON object with subject, prompt, old, new")
    values: dict[str, str] = {}
    for key in ("subject", "prompt", "old", "new"):
        value = doc.get(key)
        if not isinstance(value, str) or not value.strip():
            raise LlmassayError(f"{where}: field '{key}' must be non-empty text")
        values[key] = value
    prompt = values["prompt"].replace("{}", values["subject"])
    if values["subject"] not in prompt:
        raise LlmassayError(f"{where}: field 'prompt' must contain the subject '{values['subject']}' (or '{{}}')")
    if prompt != prompt.rstrip():
        raise LlmassayError(f"{where}: field 'prompt' must not end with a space (the object gets its own)")
    if values["old"].strip() == values["new"].strip():
        raise LlmassayError(f"{where}: fields 'old' and 'new' are the same")
    paraphrases = doc.get("paraphrases", [])
    if not isinstance(paraphrases, list) or not all(isinstance(p, str) and values["subject"] in p.replace(
            "{}", values["subject"]) for p in paraphrases):
        raise LlmassayError(f"{where}: field 'paraphrases' must be a list of prompts that contain the subject")
    neighbours = doc.get("neighbourhood", [])
    if not isinstance(neighbours, list) or not all(
            isinstance(n, dict) and isinstance(n.get("prompt"), str) and isinstance(n.get("true"), str)
            and n["prompt"].strip() and n["true"].strip() for n in neighbours):
        raise LlmassayError(f"{where}: field 'neighbourhood' must be a list of {{prompt, true}} objects")
    return Edit(values["subject"], values["prompt"], values["old"], values["new"],
                tuple(paraphrases), tuple(Neighbour(n["prompt"], n["true"]) for n in neighbours),
                str(doc.get("id", "")))


def read_edits(path: str | Path) -> list[Edit]:
    """Every line of a JSONL file as an Edit (blank lines skipped), or one line naming the fault."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise LlmassayError(f"--edits {path}: cannot read ({exc.strerror or exc})") from None
    edits = []
    for where, number, doc in json_lines("\n".join(lines), path):
        edit = edit_from_doc(doc, where)
        edits.append(edit if edit.id else Edit(**{**edit.__dict__, "id": str(number)}))
    if not edits:
        raise LlmassayError(f"--edits {path}: no edits in the file")
    return edits


__all__ = ["Edit", "Neighbour", "edit_from_doc", "read_edits"]
