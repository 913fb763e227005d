"""SQLite request cache: one row per answered request, written as soon as it exists.

WAL mode lets several processes read and write one cache file; a busy timeout makes a
second writer wait instead of failing with `database is locked`. A row is committed in
its own transaction, so a killed process leaves only whole rows behind.
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from llmassay.hashing import stable_hash
from llmassay.types import LlmassayError, RuntimeFailure

SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    answer TEXT NOT NULL
)
"""
# When each answer was written (unix seconds), for `llmassay cache prune`. A table of its
# own, not a column of `answers`: an older llmassay sharing the home still writes three
# values into `answers` and never sees this table (its rows then have no time, see below).
WRITTEN_SCHEMA = "CREATE TABLE IF NOT EXISTS written (key TEXT PRIMARY KEY, at REAL NOT NULL) WITHOUT ROWID"
# PRAGMA user_version once rows written before `written` existed have been given a time.
TIMES_VERSION = 1


# Request fields added after caches were first written: left out of the key while unset,
# so a cache from before they existed still answers the requests that do not use them.
LATE_FIELDS = ("watermark",)


def request_key(fingerprint: dict[str, Any], kind: str, request: dict[str, Any]) -> str:
    """sha256 over (backend fingerprint, request kind, request fields)."""
    fields = {k: v for k, v in request.items() if not (k in LATE_FIELDS and v is None)}
    return stable_hash({"backend": fingerprint, "kind": kind, "request": fields})


class RequestCache:
    def __init__(self, path: str | Path, busy_timeout_s: float = 60.0) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = self._open(busy_timeout_s)
        except (OSError, sqlite3.Error) as exc:
            raise LlmassayError(f"cache {self.path}: cannot open ({exc})") from exc
        self._lock = threading.Lock()

    def _open(self, busy_timeout_s: float) -> sqlite3.Connection:
        # Switching a new file to WAL does not wait on the busy timeout: two processes
        # opening a fresh cache at once get `database is locked` at once. Retry until the
        # timeout instead.
        deadline = time.monotonic() + busy_timeout_s
        before = last_modified(self.path)  # before this open touches the file (see _date_old_rows)
        while True:
            conn = sqlite3.connect(
                str(self.path), timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
            )
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(SCHEMA)
                conn.execute(WRITTEN_SCHEMA)
                self._date_old_rows(conn, before)
                return conn
            except sqlite3.OperationalError as exc:
                conn.close()
                if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(random.uniform(0.01, 0.1))
            except BaseException:
                conn.close()
                raise

    def _date_old_rows(self, conn: sqlite3.Connection, before: float) -> None:
        """Once per cache file: rows from before `written` existed are dated with the file's
        last modification, a time no earlier than any of them was written (so `prune
        --older-than` never takes them for older than they are), and before every row
        written from now on (so `--max-size` removes them first)."""
        if conn.execute("PRAGMA user_version").fetchone()[0] >= TIMES_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("PRAGMA user_version").fetchone()[0] < TIMES_VERSION:  # not done meanwhile
                conn.execute("INSERT OR IGNORE INTO written SELECT key, ? FROM answers", (before,))
                conn.execute(f"PRAGMA user_version = {TIMES_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def get_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        with self._lock:
            try:
                for start in range(0, len(keys), 500):
                    chunk = keys[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    rows = self._conn.execute(f"SELECT key, answer FROM answers WHERE key IN ({marks})", chunk)
                    for key, answer in rows:
                        found[key] = json.loads(answer)
            except sqlite3.Error as exc:
                raise LlmassayError(f"cache {self.path}: cannot read ({exc})") from None
        return found

    def put_many(self, kind: str, items: list[tuple[str, dict[str, Any]]]) -> None:
        if not items:
            return
        rows = [(key, kind, json.dumps(answer, separators=(",", ":"))) for key, answer in items]
        now = time.time()
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    self._conn.executemany("INSERT OR REPLACE INTO answers VALUES (?, ?, ?)", rows)
                    self._conn.executemany("INSERT OR REPLACE INTO written VALUES (?, ?)",
                                           [(key, now) for key, _ in items])
                    self._conn.execute("COMMIT")
                except BaseException:
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:  # e.g. "database or disk is full"
                kind = RuntimeFailure if "full" in str(exc) or "I/O" in str(exc) else LlmassayError  # SQLITE_FULL, _IOERR
                raise kind(f"cache {self.path}: cannot write ({exc})") from None

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def last_modified(path: Path) -> float:
    """The newest modification time of a cache file and its write-ahead log; now if neither exists."""
    times = [p.stat().st_mtime for p in (path, path.with_name(path.name + "-wal")) if p.exists()]
    return max(times, default=time.time())
