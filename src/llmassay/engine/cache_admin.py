"""What the llmassay home holds, and removing its oldest entries (`llmassay cache info|prune`).

An entry is one request-cache row or one file or folder inside a part of the home
(`home.HOME_PARTS`: an assembled model, a de-quantised checkpoint, an index, a wheel
folder). Entries are removed oldest first, by the time they were written (rows) or last
modified (files), until none is older than `--older-than` and the home fits `--max-size`.
Only the parts named in home.py are touched: anything else in the home (a run folder
someone put there, with its resume checkpoints) is listed as "other" and never removed,
and run folders elsewhere are never looked at.
"""

from __future__ import annotations

import heapq
import os
import re
import shutil
import sqlite3
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from llmassay.engine.cache import RequestCache, last_modified
from llmassay.home import HOME_PARTS, HomePart, llmassay_home
from llmassay.types import LlmassayError

CACHE_FILE = "cache.sqlite"
DAY_S = 86_400.0
# A temporary file or folder a process is still writing (`x.partial`, `x.<pid>.tmp`) is
# left alone until it is this old: no model assembles or de-quantises for a day.
IN_PROGRESS_S = DAY_S
_TEMPORARY = re.compile(r"(\.partial|\.tmp)$")
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int:
    """`2G`, `500M`, `1.5GiB`, `750MB`, `1024` → bytes (binary units: 1K = 1024)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if not match:
        raise ValueError(f"{text!r} is not a size such as 2G, 500M or 1024")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Entry:
    """One removable thing, in the order prune takes them: oldest, then by name."""

    at: float
    name: str  # a cache row's key, or a file's path
    size: int
    part: str


@dataclass
class PartInfo:
    """One line of `cache info`."""

    name: str
    path: Path
    what: str
    size: int = 0
    entries: int = 0
    unit: str = "items"
    oldest: float | None = None
    newest: float | None = None
    by_kind: dict[str, int] = field(default_factory=dict)  # request cache: rows per request kind

    def as_dict(self) -> dict[str, object]:
        return {"part": self.name, "path": str(self.path), "what": self.what, "bytes": self.size,
                "entries": self.entries, "unit": self.unit, "oldest": self.oldest, "newest": self.newest,
                **({"by_kind": self.by_kind} if self.by_kind else {})}


@dataclass
class PruneResult:
    home: Path
    dry_run: bool
    size_before: int
    size_after: int  # measured after removing; estimated under --dry-run
    removed: dict[str, list[int]] = field(default_factory=dict)  # part → [entries, bytes]
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"home": str(self.home), "dry_run": self.dry_run, "bytes_before": self.size_before,
                "bytes_after": self.size_after,
                "removed": {p: {"entries": n, "bytes": b} for p, (n, b) in self.removed.items()},
                "notes": self.notes}


def _tree(path: Path) -> tuple[int, float, int]:
    """(bytes, newest mtime, files) of a file or a folder; links are counted, not followed."""
    st = path.lstat()
    if not path.is_dir() or path.is_symlink():
        return st.st_size, st.st_mtime, 1
    size, newest, files = 0, st.st_mtime, 0
    for root, _, names in os.walk(path):
        for name in names:
            try:
                fst = os.lstat(os.path.join(root, name))
            except OSError:  # removed while we walk
                continue
            size, newest, files = size + fst.st_size, max(newest, fst.st_mtime), files + 1
    return size, newest, files


def _cache_files(home: Path) -> list[Path]:
    base = home / CACHE_FILE
    return [p for p in (base, home / f"{CACHE_FILE}-wal", home / f"{CACHE_FILE}-shm") if p.exists()]


class _CacheRows:
    """Read-mostly queries on the request cache file; a row with no time (written by an
    llmassay from before times were kept, into a cache this version already dated) counts
    as written at the file's last modification, a time it cannot be older than."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.legacy_at = last_modified(path)
        try:
            self.conn = sqlite3.connect(str(path), timeout=60.0, isolation_level=None)
            tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.Error as exc:
            raise LlmassayError(f"cache {path}: cannot read ({exc})") from None
        if "answers" not in tables:
            raise LlmassayError(f"cache {path}: not an llmassay request cache (no answers table)")
        self.dated = "written" in tables
        self.source = ("answers a LEFT JOIN written w ON w.key = a.key" if self.dated else "answers a")
        self.at = "COALESCE(w.at, ?)" if self.dated else "?"

    def summary(self) -> tuple[dict[str, int], float | None, float | None, int]:
        """(rows per kind, oldest, newest, bytes of keys and answers)."""
        kinds = dict(self.conn.execute("SELECT kind, COUNT(*) FROM answers GROUP BY kind ORDER BY kind").fetchall())
        oldest, newest, payload = self.conn.execute(
            f"SELECT MIN({self.at}), MAX({self.at}), SUM(length(a.key) + length(a.kind) + length(a.answer)) "
            f"FROM {self.source}", (self.legacy_at, self.legacy_at)).fetchone()
        return kinds, oldest, newest, int(payload or 0)

    def rows(self, scale: float) -> Generator[Entry, None, None]:
        """Every row oldest first, its size its share of the file (`scale` bytes per payload byte)."""
        query = (f"SELECT {self.at} AS t, a.key, length(a.key) + length(a.kind) + length(a.answer) "
                 f"FROM {self.source} ORDER BY t, a.key")
        cursor = self.conn.execute(query, (self.legacy_at,))
        try:
            for at, key, n in cursor:
                yield Entry(at, key, int(n * scale), "request cache")
        finally:
            cursor.close()

    def delete_through(self, last: Entry) -> int:
        """Delete every row up to and including `last` in `rows()` order."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            cursor = self.conn.execute(
                f"DELETE FROM answers WHERE key IN (SELECT a.key FROM {self.source} "
                f"WHERE ({self.at}, a.key) <= (?, ?))", (self.legacy_at, last.at, last.name))
            if self.dated:
                self.conn.execute("DELETE FROM written WHERE key NOT IN (SELECT key FROM answers)")
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        return cursor.rowcount

    def compact(self) -> str | None:
        """Give the freed pages back to the disk; a note when it cannot be done now (another
        process is reading, or the disk lacks room for the copy VACUUM writes)."""
        try:
            self.conn.execute("VACUUM")
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            return (f"request cache: rows removed, but the file keeps its size until VACUUM succeeds ({exc}); "
                    "its free pages are reused by new answers meanwhile")
        return None

    def close(self) -> None:
        self.conn.close()


def _part_entries(home: Path, part: HomePart, now: float) -> list[Entry]:
    """The removable files and folders of a part (its children), skipping work in progress."""
    root = home / part.path
    if not part.prunable or not root.is_dir() or root.is_symlink():
        return []
    out = []
    for child in sorted(root.iterdir()):
        size, at, _ = _tree(child)
        if _TEMPORARY.search(child.name) and now - at < IN_PROGRESS_S:
            continue
        out.append(Entry(at, str(child), size, part.name))
    return out


def home_size(home: Path) -> int:
    return _tree(home)[0] if home.exists() else 0


def home_info(home: Path | None = None) -> list[PartInfo]:
    """Each part of the home with its size and entry count, then "other" for the rest."""
    home = home or llmassay_home()
    infos: list[PartInfo] = []
    claimed = {CACHE_FILE, f"{CACHE_FILE}-wal", f"{CACHE_FILE}-shm"}
    for part in HOME_PARTS:
        info = PartInfo(part.name, home / part.path, part.what)
        claimed.add(part.path)
        if part.path == CACHE_FILE:
            info.unit = "rows"
            files = _cache_files(home)
            info.size = sum(p.stat().st_size for p in files)
            if (home / CACHE_FILE).exists():
                rows = _CacheRows(home / CACHE_FILE)
                try:
                    info.by_kind, info.oldest, info.newest, _ = rows.summary()
                finally:
                    rows.close()
                info.entries = sum(info.by_kind.values())
        elif info.path.exists():
            if info.path.is_dir():
                children = list(info.path.iterdir())
                info.entries = len(children)
                times = [_tree(c)[1] for c in children]
                info.oldest, info.newest = (min(times), max(times)) if times else (None, None)
                info.size = _tree(info.path)[0]
            else:
                info.unit, info.entries = "file", 1
                info.size, info.newest, _ = _tree(info.path)
                info.oldest = info.newest
        infos.append(info)
    others = sorted(p for p in home.iterdir() if p.name not in claimed) if home.is_dir() else []
    if others:
        other = PartInfo("other", home, "not written by llmassay's caches: never pruned (" +
                         ", ".join(p.name for p in others[:5]) + (", …" if len(others) > 5 else "") + ")",
                         unit="items", entries=len(others))
        other.size = sum(_tree(p)[0] for p in others)
        infos.append(other)
    return infos


def prune_home(
    older_than_days: float | None = None, max_size: int | None = None, dry_run: bool = False,
    home: Path | None = None, now: float | None = None,
) -> PruneResult:
    """Remove entries oldest first while one is older than `older_than_days` or the home is
    larger than `max_size` bytes; `dry_run` only says what would go. A row's share of the
    cache file is an estimate, so a pass that leaves the home over `max_size` is followed
    by another (at most MAX_PASSES)."""
    if older_than_days is None and max_size is None:
        raise LlmassayError("cache prune: give --older-than DAYS and/or --max-size SIZE")
    home = home or llmassay_home()
    now = time.time() if now is None else now
    cutoff = None if older_than_days is None else now - older_than_days * DAY_S
    result = PruneResult(home, dry_run, home_size(home), 0)
    result.size_after = result.size_before
    if not dry_run and (home / CACHE_FILE).exists():
        RequestCache(home / CACHE_FILE).close()  # the current schema (row times) before deleting by time
    target = max_size
    for _ in range(1 if dry_run else MAX_PASSES):
        removed, estimate = _prune_pass(home, cutoff, target, dry_run, now, result)
        if not removed or max_size is None or target is None or result.size_after <= max_size:
            break
        target = max(0, target - (result.size_after - estimate))  # aim lower by this pass's misestimate
    if max_size is not None and result.size_after > max_size:
        why = ("run prune again (a row's share of the cache file is an estimate)" if removed and not dry_run else
               "what is left is not prunable (file hashes, work in progress, entries listed as other)")
        result.notes.append(f"the home is still {human_size(result.size_after)}, over {human_size(max_size)}: {why}")
    return result


MAX_PASSES = 3


def _prune_pass(home: Path, cutoff: float | None, max_size: int | None, dry_run: bool, now: float,
                result: PruneResult) -> tuple[int, int]:
    """One oldest-first walk over files and rows together; adds to `result`, returns how
    many entries it removed (or would remove) and the home's size it expected after."""
    total = result.size_after
    files = sorted((e for part in HOME_PARTS for e in _part_entries(home, part, now)), key=lambda e: (e.at, e.name))
    rows = _CacheRows(home / CACHE_FILE) if (home / CACHE_FILE).exists() else None
    doomed: list[Entry] = []
    last_row: Entry | None = None

    def walk(row_stream: Iterator[Entry]) -> None:
        nonlocal total, last_row
        for entry in heapq.merge(iter(files), row_stream, key=lambda e: (e.at, e.name)):
            too_old = cutoff is not None and entry.at < cutoff
            too_big = max_size is not None and total > max_size
            if not (too_old or too_big):
                break
            total -= entry.size
            counts = result.removed.setdefault(entry.part, [0, 0])
            counts[0], counts[1] = counts[0] + 1, counts[1] + entry.size
            if entry.part == "request cache":
                last_row = entry
            else:
                doomed.append(entry)

    try:
        if rows is None:
            walk(iter(()))
        else:
            stream = rows.rows(_bytes_per_payload_byte(home, rows))
            try:
                walk(stream)
            finally:
                stream.close()  # an open SELECT would block the DELETE's commit and VACUUM
        if not dry_run:
            for entry in doomed:
                _remove(Path(entry.name), home)
            if rows is not None and last_row is not None:
                rows.delete_through(last_row)
                note = rows.compact()
                if note and note not in result.notes:
                    result.notes.append(note)
    finally:
        if rows is not None:
            rows.close()
    result.size_after = total if dry_run else home_size(home)
    return len(doomed) + (last_row is not None), total


def _bytes_per_payload_byte(home: Path, rows: _CacheRows) -> float:
    """How much of the cache files one byte of key and answer stands for: their size less
    what an empty cache keeps (the schema page and each table's and index's root page)."""
    payload = rows.summary()[3]
    page = rows.conn.execute("PRAGMA page_size").fetchone()[0]
    on_disk = sum(p.stat().st_size for p in _cache_files(home))
    return max(on_disk - 4 * page, 0) / payload if payload else 0.0


def _remove(path: Path, home: Path) -> None:
    """Delete a part's file or folder; never anything outside the home."""
    if not path.parent.resolve().is_relative_to(home.resolve()):
        raise LlmassayError(f"cache prune: {path} is outside the home {home}; not removed")
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        pass  # removed meanwhile
    except OSError as exc:
        raise LlmassayError(f"cache prune: cannot remove {path} ({exc})") from None
