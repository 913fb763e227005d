"""`llmassay judge` end to end with the oracle judge (right by construction) and with a
scripted judge through the engine: outcomes, stored prompts, warnings, one-line errors."""

from __future__ import annotations

import json

from fakes import judge_backend
from judge_runs import QUESTIONS, two_runs, write_run
from llmassay.cli import main
from llmassay.engine.engine import Engine
from llmassay.judge.judges import ModelJudge
from llmassay.judge.session import JudgeConfig, run_judgement


def test_oracle_judgement_of_two_runs(tmp_path, capsys):
    a, b = two_runs(tmp_path)
    rubric = tmp_path / "rubric.txt"
    rubric.write_text("Pass only the exact result.")
    out = tmp_path / "judged"
    code = main(["judge", str(a), str(b), "--judge-model", "oracle", "--output-path", str(out),
                 "--calibration-limit", "10", "--rubric", str(rubric), "--scale", "pass-fail"])
    assert code == 0
    result = json.loads((out / "judge_results.json").read_text())
    assert [result["metrics"][k]["value"] for k in ("win_a", "win_b", "tie")] == [3 / 6, 2 / 6, 1 / 6]
    assert result["metrics"]["position_consistency"]["value"] == 1.0
    assert result["metrics"]["first_slot_bias"]["value"] == 0.0
    assert result["calibration"]["metrics"]["accuracy"]["value"] == 1.0 and result["informative"] is True
    assert result["grading"]["a"]["score"]["value"] == 0.5 and result["grading"]["b"]["score"]["n"] == 6
    rows = [json.loads(line) for line in (out / "judge_pairs.jsonl").read_text().splitlines()]
    assert [r["outcome"] for r in rows] == ["a", "a", "a", "b", "b", "tie"]  # q5: B is hostile text, A wrong
    assert rows[0]["orders"][1]["output"] == "[[B]]" and "[User Question]\nCalculate 1 + 1." in rows[0]["orders"][0]["prompt"]
    assert "warning" not in capsys.readouterr().out


def test_uninformative_judge_is_flagged_next_to_every_figure(tmp_path, capsys):
    a, b = two_runs(tmp_path)
    judge = ModelJudge(Engine(judge_backend("first")), "first", chat=False)
    result = run_judgement(JudgeConfig(str(a), str(b), "scripted", str(tmp_path / "j"), calibration_limit=10), judge)
    assert result["informative"] is False and result["warning"] == "judge uninformative"
    assert result["metrics"]["first_slot_bias"]["value"] == 0.5 and result["engine"]["requests"] == 40 + 6 * 3
    from llmassay.cli.judge import judge_tables

    pairwise = judge_tables(result)[1]
    assert list(pairwise.columns[4].cells) == ["judge uninformative"] * len(result["metrics"])


def test_bad_input_is_one_line(tmp_path, capsys):
    a, _ = two_runs(tmp_path)
    other = write_run(tmp_path / "other", ["1"] * len(QUESTIONS))
    (other / "samples_arith_2026-01-01T00-00-00.000000.jsonl").write_text('{"id": "zz", "generation": "1"}\n')
    cases = [
        ([str(a), str(tmp_path / "missing")], "not a run directory"),
        ([str(a), str(other)], "share no (task, sample id)"),
        ([str(a), str(a), "--template", str(tmp_path / "nope.j2")], "nope.j2: cannot read the pairwise judge template"),
        ([str(a), str(a), "--calibrate", "no_such_task"], "no_such_task"),
    ]
    for extra, message in cases:
        assert main(["judge", *extra, "--judge-model", "oracle", "--output-path", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err
