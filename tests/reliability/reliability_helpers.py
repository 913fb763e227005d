"""Helpers shared by the reliability tests: CLI subprocesses, kill -9, on-disk checks."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLI = [sys.executable, "-m", "llmassay.cli"]
MODEL = "llamacpp/smollm2-135m"
ARITH_N = 100  # arith_sample items in the crash-safety runs (~0.25 s each on 2 cores)
RUN_TIMEOUT_S = 600  # generous: a loaded 2-core machine must not make a test flaky
TIMING_FIELDS = ("latency_s", "ttft_s")  # differ between runs by nature; not results


def arith_args(limit: int, *extra: str) -> list[str]:
    return ["run", "--model", MODEL, "--tasks", "arith_sample", "--limit", str(limit), "--chunk-size", "2", *extra]


def cli_env(home: Path) -> dict[str, str]:
    return {**os.environ, "LLMASSAY_HOME": str(home)}


def run_cli(args: list[str], home: Path, timeout: float = RUN_TIMEOUT_S) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=cli_env(home), timeout=timeout)


def arith_reference_run(root: Path, home: Path, limit: int) -> dict[str, Path]:
    out, cache = root / "out", root / "cache.sqlite"
    done = run_cli(arith_args(limit, "--cache-path", str(cache), "--output-path", str(out)), home)
    assert done.returncode == 0, done.stderr[-2000:]
    return {"out": out, "samples": samples_file(out), "results": results_file(out), "cache": cache}


def samples_file(out: Path, task: str = "arith_sample") -> Path:
    files = sorted(out.glob(f"samples_{task}_*.jsonl"))
    assert files, f"no samples file in {out}"
    return files[-1]


def results_file(out: Path) -> Path:
    files = sorted(out.glob("results_*.json"))
    assert files, f"no results file in {out}"
    return files[-1]


def lines_by_id(path: Path) -> dict[str, bytes]:
    """The samples file's lines (bytes, with newline) by sample id."""
    return {json.loads(line)["id"]: line for line in path.read_bytes().splitlines(keepends=True)}


@dataclass
class Killed:
    delay_s: float
    returncode: int | None  # None: killed while running; else it had already exited


def kill_after(args: list[str], home: Path, delay_s: float) -> Killed:
    """Start the CLI, SIGKILL it `delay_s` seconds later (unless it has exited by then)."""
    proc = subprocess.Popen([*CLI, *args], env=cli_env(home), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        proc.wait(timeout=delay_s)
        _, err = proc.communicate(timeout=RUN_TIMEOUT_S)
        assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
        return Killed(delay_s, proc.returncode)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        return Killed(delay_s, None)


def progress_log(out: Path, task: str = "arith_sample") -> Path | None:
    logs = sorted(out.glob(f".llmassay/*/{task}__accuracy.jsonl"))
    assert len(logs) <= 1, f"more than one progress file for one configuration: {logs}"
    return logs[0] if logs else None


@dataclass
class LogState:
    rows: int  # complete, valid rows
    torn: bool  # a partial last line (a write cut by the kill)


def check_progress_log(out: Path, reference: dict[str, bytes]) -> LogState:
    """Every complete line of the progress file is byte-identical to the reference line for
    its id, no id appears twice, and only the very last line may be partial."""
    log = progress_log(out)
    if log is None:
        return LogState(0, False)
    data = log.read_bytes()
    pieces = data.splitlines(keepends=True)
    torn = bool(pieces) and not pieces[-1].endswith(b"\n")
    complete = pieces[:-1] if torn else pieces
    seen: set[str] = set()
    for number, line in enumerate(complete, start=1):
        row = json.loads(line)
        assert row["id"] not in seen, f"line {number}: id {row['id']} appears twice"
        seen.add(row["id"])
        assert line == reference[row["id"]], f"line {number} ({row['id']}) differs from the uninterrupted run"
    return LogState(len(complete), torn)


def cache_rows(path: Path) -> dict[str, tuple[str, str]]:
    """key -> (kind, answer JSON) after `PRAGMA integrity_check` passed."""
    conn = sqlite3.connect(str(path), timeout=60)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        return {key: (kind, answer) for key, kind, answer in conn.execute("SELECT key, kind, answer FROM answers")}
    finally:
        conn.close()


def answer_without_timing(answer: str) -> dict[str, Any]:
    data = json.loads(answer)
    return {k: v for k, v in data.items() if k not in TIMING_FIELDS}


def one_line(message: str) -> str:
    assert message, "empty message"
    assert len(message.splitlines()) == 1, f"not one line: {message!r}"
    return message


def wait_for(predicate: Any, timeout_s: float, interval_s: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return predicate()
