"""Crash safety: real CLI runs SIGKILLed at seeded random moments, then rerun.

One long-ish run is killed again and again (kill, rerun, kill again, ...) so that many
kills land in model loading, mid-chunk, mid-append and mid-commit within a few minutes.
After every kill the on-disk state is checked; at the end the finished output must be
byte-identical to an uninterrupted run.
"""

from __future__ import annotations

import json
import random

import pytest

from reliability_helpers import (
    ARITH_N,
    arith_args,
    answer_without_timing,
    cache_rows,
    check_progress_log,
    kill_after,
    lines_by_id,
    progress_log,
    results_file,
    run_cli,
    samples_file,
)

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

KILLS = 22  # per test: >= 20 random moments each for the progress file and the cache
SEED = 20261124
# Startup (imports + model load) takes ~0.5 s and a row ~0.25 s: kills fall into startup,
# computation and appends alike.
DELAY_S = (0.05, 2.4)


def test_kill_9_at_random_moments_loses_and_repeats_nothing(arith_reference, rel_home, tmp_path, reliability):
    category = "crash safety: progress file"
    reference = lines_by_id(arith_reference["samples"])
    assert len(reference) == ARITH_N
    out = tmp_path / "killed"
    args = arith_args(ARITH_N, "--no-cache", "--output-path", str(out))
    rng = random.Random(SEED)
    rows_before = 0
    for k in range(1, KILLS + 1):
        killed = kill_after(args, rel_home, rng.uniform(*DELAY_S))
        with reliability.case(category, f"kill {k}", soft=True) as case:
            state = check_progress_log(out, reference)
            case.name = (
                f"kill {k} at {killed.delay_s:.2f} s: {rows_before} -> {state.rows} rows on disk"
                + (", torn last line" if state.torn else "")
                + (", run had finished" if killed.returncode == 0 else "")
            )
            assert state.rows >= rows_before, "finished rows were lost"
            for path in out.glob("results_*.json"):  # written atomically: never half a file
                assert json.loads(path.read_text())["results"]
            if killed.returncode is None and state.rows < ARITH_N:
                assert not list(out.glob("results_*.json")), "results written before the run finished"
        rows_before = state.rows

    with reliability.case(category, f"rerun after {KILLS} kills completes, byte-identical to an uninterrupted run"):
        done = run_cli(args, rel_home)
        assert done.returncode == 0, done.stderr[-2000:]
        assert samples_file(out).read_bytes() == arith_reference["samples"].read_bytes()
        log = progress_log(out)
        ids = [json.loads(line)["id"] for line in log.read_text().splitlines()]
        assert len(ids) == len(set(ids)) == ARITH_N
        doc = json.loads(results_file(out).read_text())
        assert doc["results"] == json.loads(arith_reference["results"].read_text())["results"]
        assert doc["results"]["arith_sample"]["accuracy"]["exact_match"]["n"] == ARITH_N
        # Only what was not on disk reached the model.
        assert doc["engine"]["requests"] == ARITH_N - rows_before
    reliability.assert_all_passed()


def test_kill_9_while_writing_the_cache_leaves_only_whole_rows(arith_reference, rel_home, tmp_path, reliability):
    category = "crash safety: SQLite cache"
    reference = lines_by_id(arith_reference["samples"])
    ref_cache = cache_rows(arith_reference["cache"])
    assert len(ref_cache) == ARITH_N
    ref_answers = {key: (kind, answer_without_timing(answer)) for key, (kind, answer) in ref_cache.items()}
    cache = tmp_path / "cache.sqlite"
    rng = random.Random(SEED + 1)
    cached_before = 0
    for k in range(1, KILLS + 1):
        # A fresh output directory each time: the cache is the only thing carried over.
        out = tmp_path / f"run{k}"
        killed = kill_after(arith_args(ARITH_N, "--cache-path", str(cache), "--output-path", str(out)), rel_home,
                            rng.uniform(*DELAY_S))
        with reliability.case(category, f"kill {k}", soft=True) as case:
            rows = cache_rows(cache) if cache.exists() else {}  # PRAGMA integrity_check is ok
            case.name = (
                f"kill {k} at {killed.delay_s:.2f} s: {cached_before} -> {len(rows)} cached answers, integrity ok"
                + (", run had finished" if killed.returncode == 0 else "")
            )
            assert len(rows) >= cached_before, "committed cache rows were lost"
            for key, (kind, answer) in rows.items():
                assert key in ref_answers, "a cache row with an unknown key"
                assert (kind, answer_without_timing(answer)) == ref_answers[key], "a cache row differs from the reference"
            check_progress_log(out, reference)
        cached_before = len(rows)

    with reliability.case(category, f"run after {KILLS} kills: results equal the uninterrupted run"):
        out = tmp_path / "final"
        done = run_cli(arith_args(ARITH_N, "--cache-path", str(cache), "--output-path", str(out)), rel_home)
        assert done.returncode == 0, done.stderr[-2000:]
        assert samples_file(out).read_bytes() == arith_reference["samples"].read_bytes()
        doc = json.loads(results_file(out).read_text())
        assert doc["results"] == json.loads(arith_reference["results"].read_text())["results"]
        assert doc["engine"]["cache_hits"] == cached_before
        assert doc["engine"]["computed"] == ARITH_N - cached_before
        final = cache_rows(cache)
        assert {k: (kind, answer_without_timing(a)) for k, (kind, a) in final.items()} == ref_answers
    reliability.assert_all_passed()
