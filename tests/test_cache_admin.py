"""`llmassay cache info|prune`: each part of the home with its size and entries; pruning
removes request-cache rows and part files oldest first, by age and/or to a size, never
touching what llmassay's caches did not write (a run folder and its resume checkpoints)."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

import pytest

from llmassay.engine.cache import RequestCache
from llmassay.engine.cache_admin import home_info, home_size, parse_size, prune_home
from llmassay.types import LlmassayError

NOW = 2_000_000_000.0
ANSWER = {"text": "x" * 5000, "n_tokens": 3}  # a row over two pages: removing one shrinks the file
DAY = 86_400.0


def _cache(home: Path, rows: dict[str, float], kind: str = "generate") -> None:
    """Rows `key → age in days`, written through RequestCache, then dated."""
    cache = RequestCache(home / "cache.sqlite")
    cache.put_many(kind, [(key, ANSWER) for key in rows])
    cache.close()
    with sqlite3.connect(home / "cache.sqlite") as conn:
        conn.executemany("UPDATE written SET at = ? WHERE key = ?", [(NOW - age * DAY, k) for k, age in rows.items()])
    conn.close()


def _file(path: Path, size: int, age_days: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * size)
    os.utime(path, (NOW - age_days * DAY, NOW - age_days * DAY))
    return path


def _keys(home: Path) -> set[str]:
    conn = sqlite3.connect(home / "cache.sqlite")
    try:
        return {k for (k,) in conn.execute("SELECT key FROM answers")}
    finally:
        conn.close()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    _cache(home, {"old1": 40, "old2": 35, "mid": 10, "new": 1})
    _file(home / "hf-dequantised" / "aaa-float32" / "model.safetensors", 50_000, 60)
    _file(home / "factuality" / "dense-x.npy", 20_000, 5)
    _file(home / "models" / "gemma.gguf", 30_000, 20)
    _file(home / "file_hashes.json", 100, 90)  # not prunable
    _file(home / "runs" / "r1" / "samples_arith.jsonl", 10_000, 100)  # a run folder: never touched
    _file(home / "hf-dequantised" / "bbb-float32.123.tmp" / "model.safetensors", 8_000, 0)  # being written
    return home


def test_rows_are_dated_and_old_caches_migrate(tmp_path):
    # a cache written before times were kept: answers only, last modified 40 days ago
    path = tmp_path / "cache.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE answers (key TEXT PRIMARY KEY, kind TEXT NOT NULL, answer TEXT NOT NULL)")
        conn.executemany("INSERT INTO answers VALUES (?, 'generate', '{}')", [("a",), ("b",)])
    conn.close()
    os.utime(path, (time.time() - 40 * DAY,) * 2)
    before = time.time()
    cache = RequestCache(path)
    cache.put_many("generate", [("c", {"text": "y"})])
    assert cache.get_many(["a", "c"]) == {"a": {}, "c": {"text": "y"}}
    cache.close()
    with sqlite3.connect(path) as conn:
        times = dict(conn.execute("SELECT key, at FROM written"))
        # an older llmassay sharing the home still writes its three columns
        conn.execute("INSERT OR REPLACE INTO answers VALUES ('d', 'generate', '{}')")
    conn.close()
    assert times["a"] == times["b"] == pytest.approx(time.time() - 40 * DAY, abs=5)
    assert before <= times["c"] <= time.time()
    result = prune_home(older_than_days=30, home=tmp_path)
    assert result.removed["request cache"][0] == 2
    assert _keys(tmp_path) == {"c", "d"}


def test_info_names_each_part_with_size_and_entries(home):
    parts = {p.name: p for p in home_info(home)}
    cache = parts["request cache"]
    assert (cache.entries, cache.unit, cache.by_kind) == (4, "rows", {"generate": 4})
    assert cache.oldest == pytest.approx(NOW - 40 * DAY) and cache.newest == pytest.approx(NOW - 1 * DAY)
    assert cache.size == sum(p.stat().st_size for p in home.glob("cache.sqlite*"))
    assert (parts["hf-dequantised"].entries, parts["hf-dequantised"].size) == (2, 58_000)
    assert (parts["indexes"].entries, parts["indexes"].size) == (1, 20_000)
    assert (parts["models"].entries, parts["models"].size) == (1, 30_000)
    assert (parts["file hashes"].entries, parts["file hashes"].size) == (1, 100)
    assert (parts["wheels"].entries, parts["wheels"].size) == (0, 0)
    assert (parts["other"].entries, parts["other"].size) == (1, 10_000)
    assert "runs" in parts["other"].what


def test_prune_older_than_removes_exactly_the_old_rows_and_files(home):
    dry = prune_home(older_than_days=15, dry_run=True, home=home, now=NOW)
    assert {p: n for p, (n, _) in dry.removed.items()} == {"hf-dequantised": 1, "request cache": 2, "models": 1}
    assert _keys(home) == {"old1", "old2", "mid", "new"}  # a dry run removes nothing
    assert (home / "models" / "gemma.gguf").exists()

    done = prune_home(older_than_days=15, home=home, now=NOW)
    assert done.removed == dry.removed
    assert _keys(home) == {"mid", "new"}
    assert not (home / "hf-dequantised" / "aaa-float32").exists() and not (home / "models" / "gemma.gguf").exists()
    assert (home / "factuality" / "dense-x.npy").exists()
    assert (home / "runs" / "r1" / "samples_arith.jsonl").exists() and (home / "file_hashes.json").exists()
    assert (home / "hf-dequantised" / "bbb-float32.123.tmp").exists()  # in progress
    with sqlite3.connect(home / "cache.sqlite") as conn:
        assert {k for (k,) in conn.execute("SELECT key FROM written")} == {"mid", "new"}
    conn.close()


def test_prune_max_size_removes_oldest_first_until_the_home_fits(home):
    before = home_size(home)
    # enough to drop the 60-day folder (50 kB) and the 40-day row, not the 35-day row
    target = before - 50_000 - 1000
    result = prune_home(max_size=target, home=home, now=NOW)
    assert result.size_after <= target
    assert not (home / "hf-dequantised" / "aaa-float32").exists()
    assert "old1" not in _keys(home)
    assert (home / "models" / "gemma.gguf").exists() and "new" in _keys(home)

    # down to nothing: every prunable entry goes, the rest stays and is said
    result = prune_home(max_size=0, home=home, now=NOW)
    assert _keys(home) == set()
    left = sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file() and "cache.sqlite" not in p.name)
    assert left == ["file_hashes.json", "hf-dequantised/bbb-float32.123.tmp/model.safetensors",
                    "runs/r1/samples_arith.jsonl"]
    assert (home / "runs" / "r1" / "samples_arith.jsonl").exists()
    assert "not prunable" in result.notes[-1]


def test_prune_while_a_run_holds_the_cache_open(home):
    running = RequestCache(home / "cache.sqlite")
    prune_home(older_than_days=15, home=home, now=NOW)
    running.put_many("generate", [("fresh", {"text": "z"})])  # the run goes on writing
    assert running.get_many(["fresh", "mid", "old1"]) == {"fresh": {"text": "z"}, "mid": ANSWER}
    running.close()


def test_sizes_parse():
    assert [parse_size(s) for s in ("2G", "500M", "1.5GiB", "750MB", "1024", "10k")] == [
        2 << 30, 500 << 20, 3 << 29, 750 << 20, 1024, 10 << 10]
    with pytest.raises(ValueError, match="'2X' is not a size"):
        parse_size("2X")
    with pytest.raises(LlmassayError, match="give --older-than DAYS and/or --max-size SIZE"):
        prune_home()


def cli(*argv: str) -> int:
    from llmassay.cli import main

    return main(list(argv))


def test_cli_info_and_prune(home, monkeypatch, capsys):
    monkeypatch.setenv("LLMASSAY_HOME", str(home))
    assert cli("cache", "info", "--json") == 0
    info = json.loads(capsys.readouterr().out)
    assert info["home"] == str(home) and info["source"] == "$LLMASSAY_HOME"
    assert {p["part"]: p["entries"] for p in info["parts"]}["request cache"] == 4
    assert cli("cache", "info") == 0
    out = capsys.readouterr().out
    assert "request cache" in out and "4 rows (generate 4)" in out and "hf-dequantised" in out

    # rows are dated 35 and 40 days before NOW, which is in the future: age them from today
    with sqlite3.connect(home / "cache.sqlite") as conn:
        conn.execute("UPDATE written SET at = at - ?", (NOW - time.time(),))
    conn.close()
    assert cli("cache", "prune", "--older-than", "30", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "request cache: would remove 2 rows" in out and _keys(home) == {"old1", "old2", "mid", "new"}
    assert cli("cache", "prune", "--older-than", "30") == 0
    assert "request cache: removed 2 rows" in capsys.readouterr().out and _keys(home) == {"mid", "new"}

    for bad, message in ((("cache", "prune"), "give --older-than DAYS and/or --max-size SIZE"),
                         (("cache", "prune", "--max-size", "2X"), "'2X' is not a size"),
                         (("cache", "prune", "--older-than", "-1"), "must be >= 0 days")):
        with pytest.raises(SystemExit) as exit_:
            cli(*bad)
        assert exit_.value.code == 2 and message in capsys.readouterr().err
