"""RunStore: append-only per-sample progress files, and the final results files.

Resume is by construction (datatrove's lesson): every finished sample is one JSON line,
appended and fsynced, in a progress file keyed by everything that determines the
sample's result. A rerun reads the file, skips finished ids, and appends the rest. A
process killed mid-write leaves at most one torn last line, which is cut off on reopen.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from llmassay.runfiles import latest_results, safe_name
from llmassay.types import LlmassayError, os_failure

__all__ = ["PROGRESS_DIR", "RunStore", "SampleLog", "latest_results", "safe_name"]

PROGRESS_DIR = ".llmassay"


def _write_error(path: Path, exc: OSError) -> LlmassayError:
    return os_failure(f"{path}: cannot write ({exc.strerror or exc}); finished samples are kept", exc)


class SampleLog:
    """The progress file of one (task, probe, config): id → finished row."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[str, dict[str, Any]] = {}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _write_error(path.parent, exc) from None
        if path.exists():
            self._load()

    def _load(self) -> None:
        data = self.path.read_bytes()
        good_end = 0
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break  # torn final write
            try:
                row = json.loads(line)
            except ValueError:
                break
            if not isinstance(row, dict) or "id" not in row:
                break
            self.rows.setdefault(str(row["id"]), row)
            good_end += len(line)
        if good_end < len(data):
            with self.path.open("r+b") as handle:
                handle.truncate(good_end)

    def append(self, rows: Iterable[dict[str, Any]]) -> None:
        fresh = [r for r in rows if str(r["id"]) not in self.rows]
        if not fresh:
            return
        payload = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in fresh)
        try:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise _write_error(self.path, exc) from None
        for r in fresh:
            self.rows[str(r["id"])] = r


class RunStore:
    """The output directory: progress logs while running, lm-eval-style files at the end."""

    def __init__(self, output_path: str | Path) -> None:
        self.root = Path(output_path)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _write_error(self.root, exc) from None
        if not os.access(self.root, os.W_OK):
            raise LlmassayError(f"{self.root}: output directory is not writable")
        self.timestamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H-%M-%S.%f")

    def sample_log(self, task: str, probe: str, key: str) -> SampleLog:
        return SampleLog(self.root / PROGRESS_DIR / key[:16] / f"{safe_name(task)}__{safe_name(probe)}.jsonl")

    def write_samples(self, task: str, rows: list[dict[str, Any]]) -> Path:
        path = self.root / f"samples_{safe_name(task)}_{self.timestamp}.jsonl"
        self._atomic_write(path, "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows))
        return path

    def write_results(self, results: dict[str, Any]) -> Path:
        path = self.root / f"results_{self.timestamp}.json"
        self._atomic_write(path, json.dumps(results, indent=2, ensure_ascii=False, default=str) + "\n")
        return path

    def _atomic_write(self, path: Path, text: str) -> None:
        tmp = path.with_name(path.name + ".tmp")
        try:
            with tmp.open("w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            tmp.replace(path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise _write_error(path, exc) from None
