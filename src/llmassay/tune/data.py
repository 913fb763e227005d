"""Training pairs: what a recipe generates or a user's `--data` JSONL gives, one contract."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from llmassay.hashing import stable_hash
from llmassay.jsonlines import json_lines
from llmassay.types import LlmassayError


@dataclass(frozen=True)
class Pair:
    """One SFT example: the model is trained on `completion` given `prompt`."""

    id: str
    prompt: str
    completion: str

    @property
    def text(self) -> str:
        return self.prompt + self.completion


def read_pairs(path: str | Path) -> list[Pair]:
    """A JSONL file of {"prompt": str, "completion": str} (optionally "id"); a bad line is a
    one-line error naming the file, the line and the field."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise LlmassayError(f"--data: cannot read {path} ({exc.strerror or exc})") from None
    pairs: list[Pair] = []
    for where, number, record in json_lines("\n".join(lines), f"--data {path}"):
        if not isinstance(record, dict):
            raise LlmassayError(f"{where}: expected a JSON object with prompt and completion")
        for name in ("prompt", "completion"):
            if name not in record:
                raise LlmassayError(f"{where}: field '{name}' is missing")
            if not isinstance(record[name], str) or not record[name]:
                raise LlmassayError(f"{where}: field '{name}' must be a non-empty string")
        pairs.append(Pair(str(record.get("id", f"line{number}")), record["prompt"], record["completion"]))
    if not pairs:
        raise LlmassayError(f"--data {path}: no training pairs")
    return pairs


def write_texts(pairs: list[Pair], path: Path) -> Path:
    """The training texts as a corpus the contamination audit reads (id, text per line)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for p in pairs:
            out.write(json.dumps({"id": p.id, "prompt": p.prompt, "completion": p.completion, "text": p.text},
                                 ensure_ascii=False) + "\n")
    return path


def pairs_hash(pairs: list[Pair]) -> str:
    return stable_hash([[p.id, p.prompt, p.completion] for p in pairs])
