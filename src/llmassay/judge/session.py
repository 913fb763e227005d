"""`llmassay judge RUN_A RUN_B`: calibrate the judge on planted truth, judge every common
item in both orders, optionally grade each answer by a rubric, and write it all down
(exact prompts and raw judge outputs per item) so the figures can be audited."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmassay.judge.calibration import calibration_metrics, calibration_pairs, items_of
from llmassay.judge.grading import grade_answers, grade_metrics
from llmassay.judge.judges import ORACLE, Judge, load_judge
from llmassay.judge.pairwise import PairItem, judge_pairs
from llmassay.judge.progress import JudgeMeter
from llmassay.judge.runs import open_ended, paired_answers
from llmassay.judge.stats import UNINFORMATIVE, analyse_pairs
from llmassay.judge.templates import load_templates
from llmassay.types import LlmassayError, Metric

RESULTS = "judge_results.json"


@dataclass
class JudgeConfig:
    run_a: str
    run_b: str
    judge_model: str
    output_path: str
    model_args: dict[str, Any] = field(default_factory=dict)
    template: str | None = None
    grade_template: str | None = None
    rubric: str | None = None
    scale: str = "1-10"
    calibrate: str | None = "arith_sample"  # None: skip calibration (the output says so)
    calibration_limit: int = 30
    limit: int | None = None
    repeats: int = 1
    repeat_temperature: float = 0.7
    with_reference: bool = False
    max_tokens: int = 192
    seed: int = 0
    batch_size: int = 8
    use_cache: bool = True
    cache_path: str | None = None
    verdict: str = "generate"  # or "loglik": the judge's most likely of A/B(/C), never unparseable
    ties: bool = False  # loglik: "C" (tie) is one of the choices
    chat_template: str = "auto"  # auto|on|off, as the accuracy probe's option (auto: when the judge is a chat model)


def run_judgement(cfg: JudgeConfig, judge: Judge | None = None, meter: JudgeMeter | None = None) -> dict[str, Any]:
    """Everything `llmassay judge` reports, also written to OUTPUT_PATH/judge_results.json."""
    from llmassay.tasks.loader import load_task

    if cfg.limit is not None and cfg.limit <= 0:
        raise LlmassayError("--limit must be a positive integer")
    if cfg.calibration_limit <= 0:
        raise LlmassayError("--calibration-limit must be a positive integer")
    if cfg.repeats < 0:
        raise LlmassayError("--repeats must be 0 or more")
    if cfg.ties and cfg.verdict != "loglik":
        raise LlmassayError("--ties applies to --verdict loglik only (a generated verdict may always be [[C]])")
    templates = load_templates(cfg.template, cfg.grade_template)
    rubric = _read(cfg.rubric, "rubric") if cfg.rubric else None
    pairs = paired_answers(cfg.run_a, cfg.run_b)[: cfg.limit]
    if cfg.judge_model == ORACLE:
        loose = sorted({a.task for a, _ in pairs if open_ended(a.task)})
        if loose:
            raise LlmassayError(f"--judge-model oracle: task {', '.join(loose)} has no exact answers (open-ended)")
    out = Path(cfg.output_path)
    out.mkdir(parents=True, exist_ok=True)
    judge = judge or load_judge(cfg.judge_model, cfg.model_args, cfg.cache_path, cfg.use_cache,
                                batch_size=cfg.batch_size, max_tokens=cfg.max_tokens, seed=cfg.seed,
                                verdict=cfg.verdict, ties=cfg.ties, chat_template=cfg.chat_template)
    engine = getattr(judge, "engine", None)
    meter = meter or JudgeMeter(None)
    if engine is not None:
        meter.attach(engine)
    result: dict[str, Any] = {"runs": {"a": cfg.run_a, "b": cfg.run_b}, "judge": judge.describe(),
                              "templates": {"pairwise": templates.pairwise, "grade": templates.grade}}
    if cfg.calibrate:
        meter.phase("calibration")
        task = load_task(cfg.calibrate, num_fewshot=0).limited(cfg.calibration_limit)
        cal_rows = judge_pairs(calibration_pairs(items_of(task.samples, task.name), cfg.seed), judge, templates)
        cal_metrics, cal_details = calibration_metrics(cal_rows, cfg.seed)
        result["calibration"] = {"task": task.name, "metrics": _dicts(cal_metrics), **cal_details}
        _jsonl(out / "judge_calibration.jsonl", cal_rows)
        result["informative"] = cal_details["informative"]
    else:
        result["informative"] = None  # not calibrated: nothing vouches for the judge
    items = [PairItem(a.id, a.question, a.generation, b.generation, a.reference, None, a.task, cfg.with_reference,
                      exact_reference=not open_ended(a.task)) for a, b in pairs]
    meter.phase("pairs, both orders")
    rows = judge_pairs(items, judge, templates, cfg.repeats, cfg.repeat_temperature)
    metrics, details = analyse_pairs(rows, cfg.seed)
    result.update(metrics=_dicts(metrics), details=details)
    _jsonl(out / "judge_pairs.jsonl", rows)
    if rubric is not None:
        grading: dict[str, Any] = {"scale": cfg.scale, "rubric": rubric}
        for side, index in (("a", 0), ("b", 1)):
            meter.phase(f"rubric grades of {side.upper()}")
            grades = grade_answers([p[index] for p in pairs], judge, templates, rubric, cfg.scale)
            grading[side] = _dicts(grade_metrics(grades, cfg.scale, cfg.seed))
            _jsonl(out / f"judge_grades_{side}.jsonl", grades)
        result["grading"] = grading
    if engine is not None:
        result["engine"] = dict(engine.stats.__dict__)
    result["warning"] = None if result["informative"] else (
        UNINFORMATIVE if result["informative"] is False else "judge not calibrated (--calibrate none)")
    (out / RESULTS).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return result


def _read(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise LlmassayError(f"{path}: cannot read the {what} ({exc})") from None


def _dicts(metrics: dict[str, Metric]) -> dict[str, dict[str, Any]]:
    return {k: m.as_dict() for k, m in metrics.items()}


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows), encoding="utf-8")
