"""The command in a CI job: exit codes (2 usage, 1 runtime failure, 3 regression), -v / -q,
`python -m llmassay`, and one spelling for output locations. (An unreachable server exiting 1:
test_first_hour.py; a server failing mid-run: reliability/test_rel_faulty_server.py.)"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

import llmassay.evaluation
from fakes import RuleBackend, always_first, knows_everything, write_mc_task
from llmassay import __version__
from llmassay.cli import main
from llmassay.cli.app import _build_parser
from llmassay.evaluation import RunConfig, evaluate
from llmassay.report.compare import PairedDelta
from llmassay.report.regression import RegressionRule
from llmassay.types import LlmassayError, RuntimeFailure


# -- exit codes ---------------------------------------------------------------------------------
def test_usage_errors_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:  # argparse
        main(["run", "--tasks", "arith_sample"])
    assert exit_.value.code == 2 and "the following arguments are required: --model" in capsys.readouterr().err
    assert main(["run", "--model", "nosuch/x", "--tasks", "arith_sample", "--output-path", str(tmp_path)]) == 2
    assert main(["run", "--model", "openai/x", "--tasks", "no_such_task", "--output-path", str(tmp_path)]) == 2
    assert [line[:7] for line in capsys.readouterr().err.splitlines()] == ["error: ", "error: "]


@pytest.mark.parametrize("err,code", [(errno.ENOSPC, 1), (errno.EIO, 1), (errno.EROFS, 1), (errno.EACCES, 2),
                                      (errno.ENOTDIR, 2)])
def test_an_os_error_nothing_wrapped_is_one_line_with_its_exit_code(monkeypatch, tmp_path, capsys, err, code):
    """A full disk (or an I/O error) mid-run exits 1; a path that cannot be used (no permission,
    not a directory) is the user's to fix: 2."""
    monkeypatch.setattr(llmassay.evaluation, "load_executor", lambda *a, **k: RuleBackend(knows_everything))

    def full(*args, **kwargs):
        raise OSError(err, os.strerror(err), str(tmp_path / "o" / "results.json"))

    monkeypatch.setattr(llmassay.evaluation, "_write_run", full)
    assert main(["run", "--model", "hf/x", "--tasks", "mmlu_sample", "--limit", "1", "--no-cache",
                 "--output-path", str(tmp_path / "o")]) == code
    line = capsys.readouterr().err.strip()
    assert line == f"error: {tmp_path / 'o' / 'results.json'}: {os.strerror(err)}"


def test_runtime_failures_keep_their_exit_code_when_reworded():
    assert LlmassayError("x").exit_code == 2 and RuntimeFailure("x").exit_code == 1
    reworded = RuntimeFailure("server down").reworded("server down (3 answers kept in the cache; rerun to continue)")
    assert isinstance(reworded, RuntimeFailure) and reworded.exit_code == 1
    assert LlmassayError("bad").reworded("bad!").exit_code == 2


def test_http_status_errors_split_between_runtime_and_usage():
    from llmassay.backends.openai_compat import _StatusError

    assert [_StatusError("m", s).exit_code for s in (500, 502, 503, 429, 408, 400, 401, 404)] == [1, 1, 1, 1, 1, 2, 2, 2]


# -- compare --fail-on-regression ----------------------------------------------------------------
@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A (knows every answer), B (always the first option: right on 1 item of 4) and A again."""
    root = tmp_path_factory.mktemp("runs")
    task = write_mc_task(root / "task", [4] * 40, name="mc")
    runs = []
    for name, rule in (("good", knows_everything), ("bad", always_first), ("good2", knows_everything)):
        cfg = RunConfig(model=f"test/{name}", tasks=[str(task)], output_path=str(root / name), use_cache=False)
        evaluate(cfg, backend=RuleBackend(rule))
        runs.append(root / name)
    return runs[0], runs[1], runs[2]


def test_a_regression_exits_3_and_says_which_metric(two_runs, capsys):
    good, bad, _ = two_runs
    assert main(["compare", str(good), str(bad), "--fail-on-regression", "accuracy/acc:0.05"]) == 3
    captured = capsys.readouterr()
    assert "REGRESSION: mc / accuracy / acc (higher is better, tolerated 0.05): A 1.0000 → B 0.2500" in captured.out
    assert "regression: 1 of 1 checked metrics worse in B (mc / accuracy / acc)" in captured.err


def test_no_regression_exits_0(two_runs, capsys):
    good, bad, good2 = two_runs
    assert main(["compare", str(good), str(good2), "--fail-on-regression", "acc*"]) == 0  # identical: Δ 0
    assert main(["compare", str(bad), str(good), "--fail-on-regression", "accuracy/acc"]) == 0  # B better
    assert main(["compare", str(good), str(bad), "--fail-on-regression", "accuracy/acc:0.8"]) == 0  # within DELTA
    assert main(["compare", str(good), str(bad), "--fail-on-regression", "accuracy/acc:0:lower"]) == 0  # a fall is good
    assert "ok: mc / accuracy / acc" in capsys.readouterr().out


@pytest.mark.parametrize("spec,says", [
    ("nosuch_metric", "--fail-on-regression nosuch_metric: matches no compared metric (paired: accuracy/acc"),
    ("acc:x", "DELTA 'x' is not a number"),
    ("acc:-1", "DELTA must be a number >= 0"),
    ("acc:0:sideways", "direction 'sideways' is not higher or lower"),
])
def test_a_regression_spec_that_cannot_be_checked_is_a_usage_error(two_runs, capsys, spec, says):
    good, bad, _ = two_runs
    assert main(["compare", str(good), str(bad), "--fail-on-regression", spec]) == 2  # a typo never passes CI
    assert says in capsys.readouterr().err


def test_lower_is_better_metrics_regress_upwards():
    def delta(metric: str, d: float, low: float, high: float) -> PairedDelta:
        return PairedDelta("t", "p", metric, 50, 0.5, 0.5 + d, d, low, high)

    rule = RegressionRule.parse("*")
    assert rule.higher_is_better("acc") and not rule.higher_is_better("flip_rate[case]")
    assert not rule.higher_is_better("perplexity,none") and RegressionRule.parse("x:0:higher").higher_is_better("ter")
    from llmassay.report.compare import Comparison
    from llmassay.report.regression import check_regressions

    cmp = Comparison("a", "b", paired=[delta("flip_rate[case]", 0.2, 0.1, 0.3), delta("acc", 0.2, 0.1, 0.3),
                                       delta("acc_norm", -0.2, -0.4, 0.01)])  # last: CI holds 0
    checks, _ = check_regressions(cmp, [rule])
    assert [(c.delta.metric, c.regressed) for c in checks] == [("flip_rate[case]", True), ("acc", False),
                                                               ("acc_norm", False)]


# -- -v / -q --------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv,level,bars", [
    (["tasks"], logging.INFO, True),
    (["-q", "tasks"], logging.WARNING, False),
    (["tasks", "-q"], logging.WARNING, False),
    (["-qq", "tasks"], logging.ERROR, False),
    (["-v", "tasks"], logging.DEBUG, True),
    (["tasks", "--verbose"], logging.DEBUG, True),
])
def test_verbosity_flags_set_the_log_level_and_the_progress_bar(argv, level, bars):
    from llmassay import progress

    assert main(argv) == 0
    assert logging.getLogger("llmassay").level == level and progress._SHOW_PROGRESS["on"] is bars
    main(["tasks"])  # back to the default for other tests


def test_quiet_hides_notices_but_not_errors_or_results(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(llmassay.evaluation, "load_executor", lambda *a, **k: RuleBackend(knows_everything))
    argv = ["run", "--model", "gguf", "--model_args", "base_url=http://h,seed=1", "--tasks", "mmlu_sample",
            "--limit", "1", "--no-cache", "--output-path", str(tmp_path / "o")]
    assert main(argv) == 0
    loud = capsys.readouterr()
    assert "model args seed ignored" in loud.err  # an INFO notice
    assert main(["-q", *argv]) == 0
    quiet = capsys.readouterr()
    assert "ignored" not in quiet.err and "acc" in quiet.out  # the results table still prints
    assert main(["run", "--model", "hf/x", "--tasks", "nosuch", "-qq"]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert main(["run", "--model", "hf/x", "--tasks", "mmlu_sample", "--limit", "1", "--no-cache",
                 "--output-path", str(tmp_path / "v"), "--verbosity", "WARNING"]) == 0
    assert logging.getLogger("llmassay").level == logging.WARNING
    main(["tasks"])


# -- python -m llmassay ---------------------------------------------------------------------------
def test_python_dash_m_llmassay_is_the_command():
    done = subprocess.run([sys.executable, "-m", "llmassay", "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == f"llmassay {__version__}"
    usage = subprocess.run([sys.executable, "-m", "llmassay", "run"], capture_output=True, text=True, timeout=120)
    assert usage.returncode == 2 and "the following arguments are required: --model" in usage.stderr
    assert "exit codes: 0 done; 1 runtime failure" in subprocess.run(
        [sys.executable, "-m", "llmassay", "--help"], capture_output=True, text=True, timeout=120).stdout.replace("\n", " ")


# -- one spelling for output locations ---------------------------------------------------------------
def _parsers(parser: argparse.ArgumentParser, path: str = "llmassay"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, f"{path} {name}")


def test_every_listed_output_option_is_output_path_for_a_folder_or_output_for_a_file():
    seen = set()
    for path, parser in _parsers(_build_parser()):
        for action in parser._actions:
            shown = action.help is not argparse.SUPPRESS
            for flag in action.option_strings:
                if flag.startswith("--out") and shown:
                    assert flag in ("--output-path", "--output", "--output_path"), f"{path}: {flag}"
                    if flag == "--output-path":
                        assert action.metavar == "DIR", f"{path}: --output-path names a folder"
                    seen.add(flag)
    assert seen == {"--output-path", "--output", "--output_path"}


@pytest.mark.parametrize("new,old", [
    (["audit", "dedup", "--corpus", "c.jsonl", "--output-path", "d"], ["audit", "dedup", "--corpus", "c.jsonl", "--output-dir", "d"]),
    (["tokens", "glitch", "--model", "m", "--output-path", "d"], ["tokens", "glitch", "--model", "m", "--output-dir", "d"]),
    (["index", "build", "--kb", "k", "--output-path", "d"], ["index", "build", "--kb", "k", "--out", "d"]),
    (["kb", "edit", "--facts", "PE.capital", "--output-path", "d"], ["kb", "edit", "--facts", "PE.capital", "--out", "d"]),
    (["pareto", "r", "--task", "t", "--output", "p.html"], ["pareto", "r", "--task", "t", "--output-path", "p.html"]),
    (["assess", "--model", "m", "--output-path", "d"], ["assess", "--model", "m", "-o", "d"]),  # as `run` spells it
    (["assess", "--model", "m", "--output-path", "d"], ["assess", "--model", "m", "--output_path", "d"]),
])
def test_old_output_spellings_still_parse_to_the_same_option(new, old):
    parse = _build_parser().parse_args
    a, b = parse(new), parse(old)
    assert vars(a) == vars(b)
