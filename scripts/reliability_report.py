"""Run the reliability suite (issue #9) and regenerate docs/reliability.md from what it counted.

    .venv/bin/python scripts/reliability_report.py            # runs pytest -m reliability tests/reliability
    .venv/bin/python scripts/reliability_report.py --from-json report.json   # no run: rewrite from a saved report

Every reliability test records its cases (category, case, passed) through the fixture in
tests/reliability/conftest.py; pytest writes them to $LLMASSAY_RELIABILITY_REPORT at the
end of the session. This script turns that file into the table in docs/reliability.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The seven categories, in its order (crash safety has two rows: progress file, cache).
CATEGORIES = [
    ("crash safety: progress file", "1. kill -9 at seeded random moments, rerun; final samples byte-identical"),
    ("crash safety: SQLite cache", "1. kill -9 while the cache is written; integrity_check, no half rows used"),
    ("faulty server", "2. per-fault matrix through evaluate(): completes after bounded retries or one-line error"),
    ("hostile input", "3. fuzzed task files (hypothesis), sandbox escapes, bad CLI arguments"),
    ("output directory faults", "4. unwritable / missing / read-only directory, disk full, broken cache file"),
    ("concurrency", "5. processes sharing one cache file at the same moment"),
    ("determinism", "6. same seed, engine batch sizes 1/4/16 and local vs Ray executor (2 workers), llamacpp backend"),
    ("secrets", "7. API keys only from the environment (api_key_env, or OPENAI_API_KEY for the hosted API), never written or printed"),
]

# Found by this suite and fixed in src/ (the test that catches each is named).
BUGS = [
    ("Two processes opening a new cache file at the same moment: one failed at once with `database is locked` "
     "(switching a new SQLite file to WAL does not wait on the busy timeout; 4 simultaneous openers failed in "
     "19 of 30 trials).",
     "`engine/cache.py`: retry opening until the busy timeout",
     "test_rel_concurrency.py::test_processes_creating_one_cache_file_at_the_same_instant"),
    ("A full disk (or any SQLite error) while writing or reading the cache escaped as a raw "
     "`sqlite3.OperationalError` traceback.",
     "`engine/cache.py`: `put_many`/`get_many` raise a one-line LlmassayError; ROLLBACK only inside a transaction",
     "test_rel_output_dir.py::test_disk_full_in_the_cache, ::test_real_tmpfs_runs_out_of_space[cache-on-the-same-fs]"),
    ("openai: echoed logprobs whose arrays agree in length but stop before the end of the prompt were accepted: "
     "the continuation's last tokens were silently left out of its log-likelihood (a wrong score, no error).",
     "`backends/openai_compat.py`: the echoed tokens must reach the end of the text",
     "test_rel_faulty_server.py::test_wrong_logprobs_stop_the_run_and_keep_samples[truncated-logprobs]"),
    ("openai: non-numeric logprobs, non-numeric usage counts and a non-string completion text escaped as "
     "ValueError / AttributeError tracebacks.",
     "`backends/openai_compat.py`: validate them (usage counts are informational and count as 0)",
     "test_rel_faulty_server.py (nonnumeric-logprobs, text-not-string, garbage usage counts)"),
    ("openai: a server error message quoting the refused API key was passed into the one-line error.",
     "`backends/openai_compat.py`: the key is redacted from server messages",
     "test_rel_secrets.py::test_a_server_quoting_the_key_back_is_redacted"),
    ("Task files: a list-valued `test_split`/`fewshot_split` (TypeError), `data_files` keyed by numbers "
     "(TypeError), a data file name too long or containing NUL (OSError / ValueError), a directory as data file "
     "(error named the directory, not the task field), target `'²'` (isdigit but not int: ValueError), "
     "`num_fewshot: true` / `max_gen_toks: true` silently taken as 1, a `doc_to_choice` rendering an unhashable "
     "literal (TypeError), YAML or JSON ints over 4,300 digits or nesting too deep (ValueError / RecursionError), "
     "a bad `!!timestamp` (ValueError), a CSV field over the csv size limit (csv.Error).",
     "`tasks/loader.py`: each becomes a TaskError naming file, line and field",
     "test_rel_hostile_input.py (fuzzers, regressions, huge fields)"),
    ("Task names: a name too long for the file system or `~nosuchuser/...` escaped as OSError / RuntimeError.",
     "`tasks/loader.py`", "test_rel_hostile_input.py::test_bad_cli_arguments_are_one_line_errors"),
    ("A newline or control character in a file name or field value broke the one-line error rule.",
     "`types.py`: LlmassayError escapes non-printable characters", "test_hostile_task_file_regressions"),
    ("CLI arguments: `--chunk-size 0` (ValueError), `--chunk-size -3` (KeyError), `--temperature nan` "
     "(ValueError from JSON encoding), `--model-args timeout=abc` / `n_ctx=abc` and a file that is not a GGUF "
     "(ValueError) escaped as tracebacks; `--tasks ,` / `--probe ,` and `--temperature -1` were accepted "
     "and ran nothing or something undefined.",
     "`evaluation.py` validates the run config; `backends/base.py` turns a backend's ValueError into one line",
     "test_rel_hostile_input.py::test_bad_cli_arguments_are_one_line_errors"),
]

NOT_APPLICABLE: list[tuple[str, str]] = []

LIMITATIONS = [
    "kill -9 is a process crash, not a power cut: the progress file is fsynced per chunk, but the cache runs "
    "SQLite WAL with `synchronous=NORMAL`, which after a power loss may lose the last committed answers "
    "(never corrupt them); they are recomputed.",
    "A kill during the final atomic write of `results_*.json` / `samples_*.jsonl` can leave a stray `*.tmp` "
    "next to them; it is never read, and the rerun writes complete files.",
    "Resource exhaustion by a task file is not guarded: a YAML alias bomb or a template such as "
    "`{{ 'a' * 10**10 }}` can use unbounded memory or time (the Jinja2 sandbox blocks attribute access, "
    "not arithmetic).",
    "The real-tmpfs cases need `mount` (root with CAP_SYS_ADMIN); elsewhere they are skipped and the same "
    "faults are covered by injected ENOSPC/EROFS.",
]


def run_suite(report: Path, pytest_args: list[str]) -> tuple[int, float]:
    env = {**os.environ, "LLMASSAY_RELIABILITY_REPORT": str(report)}
    cmd = [sys.executable, "-m", "pytest", "-m", "reliability", "tests/reliability", "-p", "no:cacheprovider",
           *pytest_args]
    started = time.perf_counter()
    code = subprocess.call(cmd, cwd=ROOT, env=env)
    return code, time.perf_counter() - started


def render(data: dict, wall_s: float | None) -> str:
    records = data["records"]
    tests = data["tests"]
    tried: Counter[str] = Counter()
    passed: Counter[str] = Counter()
    by_case: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for r in records:
        tried[r["category"]] += 1
        passed[r["category"]] += bool(r["passed"])
        entry = by_case[r["category"]][r["case"]]
        entry[0] += 1
        entry[1] += bool(r["passed"])
    known = [c for c, _ in CATEGORIES]
    extra = sorted(set(tried) - set(known))
    outcomes = Counter(t["outcome"] for t in tests.values())
    seconds = sum(t["seconds"] for t in tests.values())

    lines = [
        "# Reliability",
        "",
        "Generated by `python scripts/reliability_report.py`, which runs "
        "`pytest -m reliability tests/reliability` and counts the cases each test records "
        "(tests/reliability/conftest.py). Do not edit by hand; rerun the script.",
        "",
        f"Last run: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} on {os.cpu_count()} CPU cores, "
        f"Python {platform.python_version()}; {len(tests)} tests ({outcomes['passed']} passed, "
        f"{outcomes['failed']} failed, {outcomes['skipped']} skipped) in "
        + (f"{wall_s:.0f} s wall" if wall_s is not None else f"{seconds:.0f} s of test time")
        + f"; pytest exit status {data['exitstatus']}.",
        "",
        "| category | what is tried | cases tried | passed |",
        "| --- | --- | ---: | ---: |",
    ]
    for category, what in CATEGORIES:
        lines.append(f"| {category} | {what} | {tried[category]} | {passed[category]} |")
    for category in extra:
        lines.append(f"| {category} | | {tried[category]} | {passed[category]} |")
    lines.append(f"| **total** | | **{sum(tried.values())}** | **{sum(passed.values())}** |")
    if NOT_APPLICABLE:
        lines += ["", "Not applicable yet:", ""]
        lines += [f"- {what}: {why}." for what, why in NOT_APPLICABLE]

    failed = [r for r in records if not r["passed"]]
    if failed or outcomes["failed"]:
        lines += ["", "## Failures", ""]
        lines += [f"- {r['category']}: {r['case']} ({r['test']})" for r in failed]
        lines += [f"- test {node} failed" for node, t in tests.items() if t["outcome"] == "failed"]
    skipped = {node: t for node, t in tests.items() if t["outcome"] == "skipped"}
    if skipped:
        lines += ["", "Skipped on this machine:", ""]
        lines += [f"- `{node}`: {t.get('reason', '')}" for node, t in skipped.items()]

    lines += ["", "## Bugs found and fixed", ""]
    for number, (bug, fix, test) in enumerate(BUGS, start=1):
        lines.append(f"{number}. {bug} Fix: {fix}. Caught by: `{test}`.")
    lines += ["", "## Known limitations", ""]
    lines += [f"- {text}" for text in LIMITATIONS]

    lines += ["", "## Cases", "", "Identical case names are counted together (fuzzed examples are grouped by "
              "outcome).", ""]
    for category in [*known, *extra]:
        cases = by_case.get(category)
        if not cases:
            continue
        lines += [f"<details><summary>{category}: {tried[category]} cases, {passed[category]} passed</summary>", "",
                  "| case | tried | passed |", "| --- | ---: | ---: |"]
        for case, (n, ok) in cases.items():
            lines.append(f"| {case.replace('|', '/')} | {n} | {ok} |")
        lines += ["", "</details>", ""]
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from-json", type=Path, help="a saved report: rewrite docs/reliability.md without running")
    parser.add_argument("--json-out", type=Path, help="also keep the raw report here")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "reliability.md")
    args, pytest_args = parser.parse_known_args()
    wall_s = None
    code = 0
    if args.from_json:
        data = json.loads(args.from_json.read_text())
    else:
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / "reliability.json"
            code, wall_s = run_suite(report, pytest_args)
            if not report.exists():
                print(f"pytest wrote no report (exit status {code})", file=sys.stderr)
                return code or 1
            data = json.loads(report.read_text())
            if args.json_out:
                args.json_out.write_text(report.read_text())
    args.output.write_text(render(data, wall_s))
    total = len(data["records"])
    ok = sum(bool(r["passed"]) for r in data["records"])
    print(f"{args.output}: {ok}/{total} cases passed" + (f" in {wall_s:.0f} s" if wall_s else ""))
    return code


if __name__ == "__main__":
    sys.exit(main())
