"""End to end through the `llmassay` command, as a user runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmassay.cli import main

CLI = [sys.executable, "-m", "llmassay.cli"]


def run_cli(*args: str, env_home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "LLMASSAY_HOME": str(env_home)}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=600)


def samples_rows(out: Path, task: str) -> list[dict]:
    (path,) = sorted(out.glob(f"samples_{task}_*.jsonl"))[-1:]
    return [json.loads(line) for line in path.read_text().splitlines()]


def results_doc(out: Path) -> dict:
    return json.loads(sorted(out.glob("results_*.json"))[-1].read_text())


def test_tasks_lists_bundled_sets(capsys):
    assert main(["tasks"]) == 0
    printed = capsys.readouterr().out
    assert "mmlu_sample" in printed and "arith_sample" in printed and "281" in printed


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "a", "target": "b"}\nnot json\n')
    code = main(["run", "--model", "llamacpp/smollm2-135m", "--tasks", str(bad), "--output-path", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("error: ") and "bad.jsonl:2: invalid JSON" in err and "\n" not in err
    assert main(["run", "--model", "nosuch/x", "--tasks", "mmlu_sample"]) == 2
    assert "unknown backend 'nosuch'" in capsys.readouterr().err
    assert main(["run", "--model", "llamacpp/missing.gguf", "--tasks", "mmlu_sample",
                 "--output-path", str(tmp_path / "o")]) == 2
    assert "model 'missing.gguf': no such file" in capsys.readouterr().err


@pytest.mark.slow
def test_run_writes_results_and_samples_and_is_deterministic(tmp_path):
    home = tmp_path / "home"
    args = ["run", "--model", "llamacpp/smollm2-135m", "--tasks", "mmlu_sample,arith_sample", "--limit", "8",
            "--no-cache"]
    first = run_cli(*args, "--output-path", str(tmp_path / "a"), env_home=home)
    assert first.returncode == 0, first.stderr
    assert "acc_norm" in first.stdout and "exact_match" in first.stdout and "95% CI" in first.stdout
    second = run_cli(*args, "--output-path", str(tmp_path / "b"), env_home=home)
    assert second.returncode == 0, second.stderr
    for task in ("mmlu_sample", "arith_sample"):
        a, b = samples_rows(tmp_path / "a", task), samples_rows(tmp_path / "b", task)
        assert a == b and len(a) == 8
    doc = results_doc(tmp_path / "a")
    acc = doc["results"]["mmlu_sample"]["accuracy"]["acc"]
    rows = samples_rows(tmp_path / "a", "mmlu_sample")
    assert acc["value"] == sum(r["acc"] for r in rows) / 8 and acc["n"] == 8
    assert acc["ci_low"] <= acc["value"] <= acc["ci_high"]
    row = rows[0]
    assert row["prompt"].endswith("Answer:") and row["choices"] == [" A", " B", " C", " D"]
    assert len(row["loglikelihoods"]) == 4 and row["pred"] == max(range(4), key=lambda i: row["loglikelihoods"][i])
    assert len(doc["model"]["sha256"]) == 64
    assert doc["tasks"]["mmlu_sample"]["content_hash"] and doc["config_hash"]
    assert doc["versions"]["llama_cpp_python"] == "0.3.36"
    assert doc["tokens_processed"] > 0 and doc["wall_time_s"] > 0
    assert doc == doc | {"seed": 0}
    assert results_doc(tmp_path / "b")["config_hash"] == doc["config_hash"]


@pytest.mark.slow
def test_kill_9_then_rerun_loses_nothing_and_repeats_nothing(tmp_path):
    home = tmp_path / "home"
    args = ["run", "--model", "llamacpp/smollm2-135m", "--tasks", "arith_sample", "--limit", "24",
            "--chunk-size", "2", "--no-cache"]
    reference = run_cli(*args, "--output-path", str(tmp_path / "ref"), env_home=home)
    assert reference.returncode == 0, reference.stderr

    out = tmp_path / "killed"
    env = {**os.environ, "LLMASSAY_HOME": str(home)}
    proc = subprocess.Popen([*CLI, *args, "--output-path", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    finished_lines = 0
    while time.monotonic() < deadline and proc.poll() is None:
        logs = list(out.glob(".llmassay/*/arith_sample__accuracy.jsonl"))
        finished_lines = len(logs[0].read_text().splitlines()) if logs else 0
        if finished_lines >= 6:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not list(out.glob("results_*.json"))

    rerun = run_cli(*args, "--output-path", str(out), env_home=home)
    assert rerun.returncode == 0, rerun.stderr
    rows = samples_rows(out, "arith_sample")
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)) == 24
    assert rows == samples_rows(tmp_path / "ref", "arith_sample")
    doc = results_doc(out)
    # Only the unfinished samples reached the model the second time.
    assert doc["engine"]["requests"] <= 24 - finished_lines
    assert any("resumed" in note for notes in doc["notes"].values() for note in notes)


def test_perturbations_are_listed(capsys):
    assert main(["perturbations"]) == 0
    printed = capsys.readouterr().out
    for name in ("identity", "scramble", "labels_numeric", "options_rot1", "instruction_9", "fewshot_order"):
        assert name in printed
    assert "case_lower *" in printed  # the default set is marked


@pytest.mark.parametrize("argv,says", [
    (["audit", "dedup", "--corpus", "c.jsonl"], "nothing was written"),
    (["run", "--model", "llamacpp/x", "--tasks", "arith_sample"], "rerun the same command to resume"),
])
def test_ctrl_c_says_what_was_kept(monkeypatch, capsys, argv, says) -> None:
    import llmassay.cli.app as app
    import llmassay.cli.run as run

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(app, "run_audit_command", interrupted)
    monkeypatch.setattr(run, "_run", interrupted)
    assert main(argv) == 130
    assert says in capsys.readouterr().err
