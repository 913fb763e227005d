"""SQLite request cache: one row per answered request, written as soon as it exists.

WAL mode lets several processes read and write one cache file; a busy timeout makes a
second writer wait instead of failing with `database is locked`. A row is committed in
its own transaction, so a killed process leaves only whole rows behind.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from llmassay.hashing import stable_hash
from llmassay.types import LlmassayError

SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    answer TEXT NOT NULL
)
"""


def request_key(fingerprint: dict[str, Any], kind: str, request: dict[str, Any]) -> str:
    """sha256 over (backend fingerprint, request kind, request fields)."""
    return stable_hash({"backend": fingerprint, "kind": kind, "request": request})


class RequestCache:
    def __init__(self, path: str | Path, busy_timeout_s: float = 60.0) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                str(self.path), timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise LlmassayError(f"cache {self.path}: cannot open ({exc})") from exc
        self._lock = threading.Lock()

    def get_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(f"SELECT key, answer FROM answers WHERE key IN ({marks})", chunk)
                for key, answer in rows:
                    found[key] = json.loads(answer)
        return found

    def put_many(self, kind: str, items: list[tuple[str, dict[str, Any]]]) -> None:
        if not items:
            return
        rows = [(key, kind, json.dumps(answer, separators=(",", ":"))) for key, answer in items]
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany("INSERT OR REPLACE INTO answers VALUES (?, ?, ?)", rows)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()
