"""Labels in SQLite next to the run (`review.sqlite`): WAL with synchronous=FULL, so a
label the app has acknowledged survives kill -9; one row per (item, reviewer), the
latest label wins. Rubric scores (1–10) are kept apart, one per (item, answer slot,
reviewer): a reviewer may give a verdict, scores, or both."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from llmassay.types import LlmassayError

DB_NAME = "review.sqlite"
SCHEMA = """
CREATE TABLE IF NOT EXISTS labels (
    item TEXT NOT NULL, reviewer TEXT NOT NULL, label TEXT NOT NULL, note TEXT NOT NULL DEFAULT '',
    blind INTEGER NOT NULL DEFAULT 0, updated REAL NOT NULL, PRIMARY KEY (item, reviewer)
);
CREATE TABLE IF NOT EXISTS scores (
    item TEXT NOT NULL, slot TEXT NOT NULL, reviewer TEXT NOT NULL, score INTEGER NOT NULL,
    updated REAL NOT NULL, PRIMARY KEY (item, slot, reviewer)
);
"""
SCORE_RANGE = (1, 10)


class LabelStore:
    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / DB_NAME
        self._lock = threading.Lock()
        try:
            self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise LlmassayError(f"{self.path}: cannot open the label database ({exc})") from None

    def put(self, item: str, reviewer: str, label: str, note: str = "", blind: bool = False) -> None:
        with self._lock:
            self.db.execute(
                "INSERT INTO labels VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(item, reviewer) DO UPDATE SET "
                "label=excluded.label, note=excluded.note, blind=excluded.blind, updated=excluded.updated",
                (item, reviewer, label, note, int(blind), time.time()),
            )

    def rows(self) -> list[dict[str, Any]]:
        with self._lock:
            cur = self.db.execute("SELECT item, reviewer, label, note, blind, updated FROM labels ORDER BY updated")
            return [dict(zip(("item", "reviewer", "label", "note", "blind", "updated"), r)) for r in cur.fetchall()]

    def by_reviewer(self) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for r in self.rows():
            out.setdefault(r["reviewer"], {})[r["item"]] = r["label"]
        return out

    def put_score(self, item: str, slot: str, reviewer: str, score: int) -> None:
        """`slot` is "a"/"b" for a pair's answers, "" for a single answer."""
        with self._lock:
            self.db.execute(
                "INSERT INTO scores VALUES (?, ?, ?, ?, ?) ON CONFLICT(item, slot, reviewer) DO UPDATE SET "
                "score=excluded.score, updated=excluded.updated", (item, slot, reviewer, int(score), time.time()))

    def score_rows(self) -> list[dict[str, Any]]:
        with self._lock:
            cur = self.db.execute("SELECT item, slot, reviewer, score, updated FROM scores ORDER BY updated")
            return [dict(zip(("item", "slot", "reviewer", "score", "updated"), r)) for r in cur.fetchall()]

    def scores_by_reviewer(self) -> dict[str, dict[str, int]]:
        """reviewer → score key (`score_key(item, slot)`) → score."""
        out: dict[str, dict[str, int]] = {}
        for r in self.score_rows():
            out.setdefault(r["reviewer"], {})[score_key(r["item"], r["slot"])] = r["score"]
        return out

    def export_jsonl(self) -> str:
        rows = [{**r, "blind": bool(r["blind"])} for r in self.rows()] + [{**r, "kind": "score"} for r in self.score_rows()]
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)

    def close(self) -> None:
        self.db.close()


def score_key(item: str, slot: str) -> str:
    return f"{item}#{slot}" if slot else item


def read_scores(run_dir: str | Path) -> dict[str, dict[str, int]] | None:
    """reviewer → score key → rubric score, or None when the run has no label database."""
    if not (Path(run_dir) / DB_NAME).exists():
        return None
    store = LabelStore(run_dir)
    try:
        return store.scores_by_reviewer()
    finally:
        store.close()


def read_labels(run_dir: str | Path) -> dict[str, dict[str, str]] | None:
    """reviewer → item → label, or None when the run has no label database (for the report)."""
    if not (Path(run_dir) / DB_NAME).exists():
        return None
    store = LabelStore(run_dir)
    try:
        return store.by_reviewer()
    finally:
        store.close()
