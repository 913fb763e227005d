"""Concurrency: processes sharing one cache file at the same moment.

Two runs of the same job with different output directories and one cache file must both
complete with results identical to a sequential run, and never fail with
`database is locked`, whether the cache file is new, half filled or complete.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI
from reliability_helpers import CLI, RUN_TIMEOUT_S, arith_args, cache_rows, cli_env, results_file, samples_file

pytestmark = pytest.mark.reliability

CATEGORY = "concurrency"
LIMIT = 16


def start_together(argvs: list[list[str]], home: Path) -> list[subprocess.CompletedProcess]:
    procs = [subprocess.Popen([*CLI, *argv], env=cli_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for argv in argvs]
    done = []
    for proc, argv in zip(procs, argvs):
        out, err = proc.communicate(timeout=RUN_TIMEOUT_S)
        done.append(subprocess.CompletedProcess(argv, proc.returncode, out, err))
    return done


def reference_prefix(reference: Path, n: int) -> bytes:
    return b"".join(reference.read_bytes().splitlines(keepends=True)[:n])


@pytest.mark.slow
@pytest.mark.parametrize("cache_state", ["new", "half filled", "complete"])
def test_two_model_runs_share_one_cache_file(arith_reference, rel_home, tmp_path, reliability, cache_state):
    with reliability.case(CATEGORY, f"2 llamacpp runs of one job at once, {cache_state} cache file: both complete, "
                                    "results as a sequential run, no 'database is locked'"):
        cache = tmp_path / "cache.sqlite"
        if cache_state == "complete":
            shutil.copy(arith_reference["cache"], cache)  # answers for all ARITH_N >= LIMIT items
        elif cache_state == "half filled":
            shutil.copy(arith_reference["cache"], cache)
            keep = [k for k, _ in sorted(cache_rows(cache).items())][: LIMIT // 2]
            conn = sqlite3.connect(cache)
            conn.execute(f"DELETE FROM answers WHERE key NOT IN ({','.join('?' * len(keep))})", keep)
            conn.commit()
            conn.close()
        outs = [tmp_path / "a", tmp_path / "b"]
        # One llama.cpp thread each: two default (one thread per core) processes spin against each other on a
        # 2-core machine, four times slower. The thread count leaves results unchanged (checked below).
        done = start_together([arith_args(LIMIT, "--model-args", "n_threads=1", "--cache-path", str(cache),
                                          "--output-path", str(o)) for o in outs], rel_home)
        for result in done:
            assert result.returncode == 0, result.stderr[-2000:]
            assert "locked" not in result.stderr
        expected = reference_prefix(arith_reference["samples"], LIMIT)
        for out in outs:
            assert samples_file(out).read_bytes() == expected
            assert json.loads(results_file(out).read_text())["results"]["arith_sample"]["accuracy"]["exact_match"][
                "n"] == LIMIT
        rows = cache_rows(cache)  # integrity_check ok
        assert len(rows) >= LIMIT
        if cache_state == "complete":
            for out in outs:
                assert json.loads(results_file(out).read_text())["engine"]["computed"] == 0


@pytest.fixture(scope="module")
def fake_server():
    with FakeOpenAI() as server:
        yield server


@pytest.mark.slow
def test_two_fast_runs_hammer_one_cache_file(fake_server, rel_home, tmp_path, reliability):
    """Against the fake server every sample is a cache write: 2 x 200 write transactions race."""
    with reliability.case(CATEGORY, "2 runs x 200 one-sample chunks against a fast server, one new cache file: "
                                    "both complete, identical results, no 'database is locked'"):
        cache = tmp_path / "cache.sqlite"
        args = ["run", "--model", "openai/fake", "--model-args", f"base_url={fake_server.base_url},concurrency=1",
                "--tasks", "arith_sample", "--chunk-size", "1", "--batch-size", "1", "--cache-path", str(cache)]
        outs = [tmp_path / "a", tmp_path / "b"]
        done = start_together([[*args, "--output-path", str(o)] for o in outs], rel_home)
        for result in done:
            assert result.returncode == 0, result.stderr[-2000:]
            assert "locked" not in result.stderr
        sequential = subprocess.run([*CLI, *args[:-1], str(tmp_path / "seq.sqlite"), "--output-path",
                                     str(tmp_path / "seq")], env=cli_env(rel_home), capture_output=True, text=True,
                                    timeout=RUN_TIMEOUT_S)
        assert sequential.returncode == 0, sequential.stderr[-2000:]
        expected = samples_file(tmp_path / "seq").read_bytes()
        assert len(expected.splitlines()) == 200
        for out in outs:
            assert samples_file(out).read_bytes() == expected
        rows = cache_rows(cache)
        assert len(rows) == 200
        engines = [json.loads(results_file(o).read_text())["engine"] for o in outs]
        assert all(e["cache_hits"] + e["computed"] == 200 for e in engines)


OPEN_RACE = """
import sys, time
from llmassay.engine.cache import RequestCache
path, start, me = sys.argv[1], float(sys.argv[2]), sys.argv[3]
while time.time() < start:
    pass
cache = RequestCache(path)
for i in range(20):
    cache.put_many("generate", [(f"{me}-{i}", {"v": i})])
assert len(cache.get_many([f"{me}-{i}" for i in range(20)])) == 20
cache.close()
print("ok")
"""


@pytest.mark.slow
def test_processes_creating_one_cache_file_at_the_same_instant(tmp_path, reliability):
    """Regression: switching a new file to WAL ignored the busy timeout, so a second process
    opening a fresh cache at the same moment failed at once with `database is locked`."""
    script = tmp_path / "race.py"
    script.write_text(OPEN_RACE)
    for round_ in range(1, 9):
        with reliability.case(CATEGORY, f"4 processes open a new cache file at the same instant, round {round_}: "
                                        "all write, none locked out", soft=True):
            path = tmp_path / f"c{round_}.sqlite"
            start = time.time() + 0.8
            procs = [subprocess.Popen([sys.executable, str(script), str(path), str(start), str(k)],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in range(4)]
            results = [p.communicate(timeout=120) for p in procs]
            for (out, err), proc in zip(results, procs):
                assert proc.returncode == 0 and out.strip() == "ok", err.strip().splitlines()[-1:]
            assert len(cache_rows(path)) == 80
    reliability.assert_all_passed()
