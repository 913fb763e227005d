"""Training examples: what a recipe generates or a user's `--data` JSONL gives, one contract
per method — SFT `Pair`s (prompt, completion) and DPO `PreferencePair`s (prompt, chosen,
rejected)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Union

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


@dataclass(frozen=True)
class PreferencePair:
    """One DPO example: given `prompt`, `chosen` should become more likely than `rejected`
    relative to the untuned model."""

    id: str
    prompt: str
    chosen: str
    rejected: str

    @property
    def text(self) -> str:
        """What the leakage guard audits: every text the model is trained on (or away from)."""
        return f"{self.prompt}\n{self.chosen}\n{self.rejected}"


Example = Union[Pair, PreferencePair]


def _read(path: str | Path, kind: type[Example]) -> list[Example]:
    """A JSONL file of `kind`'s text fields (optionally "id"); a bad line is a one-line error
    naming the file, the line and the field."""
    path = Path(path)
    fields = [f.name for f in dataclasses.fields(kind) if f.name != "id"]
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LlmassayError(f"--data: cannot read {path} ({exc.strerror or exc})") from None
    out: list[Example] = []
    for where, number, record in json_lines(text, f"--data {path}"):
        if not isinstance(record, dict):
            raise LlmassayError(f"{where}: expected a JSON object with {', '.join(fields)}")
        for name in fields:
            if name not in record:
                raise LlmassayError(f"{where}: field '{name}' is missing")
            if not isinstance(record[name], str) or not record[name]:
                raise LlmassayError(f"{where}: field '{name}' must be a non-empty string")
        if kind is PreferencePair and record["chosen"] == record["rejected"]:
            raise LlmassayError(f"{where}: fields 'chosen' and 'rejected' are identical")
        out.append(kind(str(record.get("id", f"line{number}")), *(record[n] for n in fields)))
    if not out:
        raise LlmassayError(f"--data {path}: no training examples")
    return out


def read_pairs(path: str | Path) -> list[Pair]:
    """A JSONL file of {"prompt": str, "completion": str} (optionally "id")."""
    return _read(path, Pair)  # type: ignore[return-value]


def read_preferences(path: str | Path) -> list[PreferencePair]:
    """A JSONL file of {"prompt": str, "chosen": str, "rejected": str} (optionally "id")."""
    return _read(path, PreferencePair)  # type: ignore[return-value]


def write_texts(pairs: list[Pair] | list[PreferencePair], path: Path) -> Path:
    """The training texts as a corpus the contamination audit reads (id, text per line)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for p in pairs:
            out.write(json.dumps({**dataclasses.asdict(p), "text": p.text}, ensure_ascii=False) + "\n")
    return path


def pairs_hash(pairs: list[Pair] | list[PreferencePair]) -> str:
    return stable_hash([list(dataclasses.astuple(p)) for p in pairs])
