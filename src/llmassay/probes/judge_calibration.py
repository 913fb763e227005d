"""The model under test as a judge, on pairs whose right answer is planted.

Run before trusting a judge: it is shown the reference against a wrong answer (plain),
and the same wrong answer padded into a long explanation against the bare right one
(padded), each pair in both orders (see `llmassay.judge.calibration`). Accuracy whose
Wilson CI reaches chance (0.5), or fewer than `MIN_CALIBRATION_ITEMS` (10) items, makes
every figure this judge produces "judge uninformative". Length is measured only causally
(`verbosity_effect`: the same wrong answer padded vs bare), never as the share of verdicts
for the longer answer, which on these pairs is 1 − padded accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmassay.judge.calibration import calibration_metrics, calibration_pairs, items_of
from llmassay.judge.judges import Judge, ModelJudge, loglik_judge
from llmassay.judge.pairwise import judge_pairs
from llmassay.judge.stats import UNINFORMATIVE, analyse_pairs, consistent, correct_share, first_slot
from llmassay.judge.templates import load_templates
from llmassay.probes._options import option
from llmassay.probes.base import Analysis, Preset, Probe, ProbeConfig, Row, SampleMetric, SummaryLine
from llmassay.types import Sample

if TYPE_CHECKING:
    from llmassay.engine.engine import Engine
    from llmassay.tasks.loader import Task


@dataclass(frozen=True)
class JudgeCalibrationOptions:
    max_tokens: int = option(192, "tokens the judge may write before its [[A]]/[[B]]/[[C]] verdict", minimum=1)
    template: str = option("", "a pairwise judge template file (Jinja: question, answer_a, answer_b); empty: MT-Bench's")
    verdict: str = option("generate", "generate: parse [[A]]/[[B]]/[[C]] from the judge's text; loglik: its most "
                          "likely of A/B after the prompt (never unparseable)", choices=("generate", "loglik"))


def _group(name: str, read: Any) -> SampleMetric:
    def value(row: Row) -> Any:
        pair = row["pairs"].get(name)
        return read(pair) if pair else None

    return SampleMetric(value, f"{read.__name__} on the item's {name} pair", binary=False)


class JudgeCalibrationProbe(Probe):
    name = "judge_calibration"
    description = "the model as a pairwise judge on planted right/wrong pairs (plain and length-padded), both orders"
    challenge = "judge reliability"
    task_types = ("generate_until",)
    Options = JudgeCalibrationOptions
    # 2: Wilson CIs for accuracies and first-slot bias; informative needs ≥ 10 items; no
    #    length_bias (it was 0.5 − padded accuracy); verbosity_effect_debiased for loglik verdicts
    schema_version = 2
    sample_metrics = {
        "accuracy": _group("plain", correct_share),
        "accuracy_padded": _group("padded", correct_share),
        "position_consistency": _group("plain", consistent),
        "first_slot_rate": _group("plain", first_slot),
    }
    # Not in `assess --quick`: 4 judge requests of up to max_tokens per item would dominate its time.
    presets = {"full": Preset(("arith_sample",), limit=100)}

    def evaluate(self, task: Task, samples: list[Sample], engine: Engine, opts: Any, cfg: ProbeConfig) -> list[Row]:
        templates = load_templates(opts.template or None)
        judge: Judge = (loglik_judge(engine, engine.backend, "model under test", False, cfg.seed, cfg.chat_model,
                                     forced=False) if opts.verdict == "loglik"
                        else ModelJudge(engine, "model under test", cfg.chat_model, opts.max_tokens, cfg.seed))
        rows = judge_pairs(calibration_pairs(items_of(samples, task.name), cfg.seed), judge, templates)
        template = judge.describe().get("template") or ("chat" if cfg.chat_model else "none (raw prompt)")
        out: dict[str, Row] = {}
        for r in rows:
            out.setdefault(r["id"], {"id": r["id"], "pairs": {}, "judge_template": template})["pairs"][r["group"]] = r
        return list(out.values())

    def analyse(self, task: Task, rows: list[Row], opts: Any, cfg: ProbeConfig) -> Analysis:
        pairs = [p for r in rows for p in r["pairs"].values()]
        metrics, details = calibration_metrics(pairs, cfg.seed)
        plain, plain_details = analyse_pairs([p for p in pairs if p["group"] == "plain"], cfg.seed)
        for name in ("position_consistency", "first_slot_bias", "unparseable_verdicts"):
            if name in plain:
                metrics[name] = plain[name]
        details["unparseable_reasons"] = plain_details.get("unparseable_reasons", {})
        details["judge_template"] = next((r["judge_template"] for r in rows if "judge_template" in r), None)
        if not details["informative"]:
            details["warning"] = UNINFORMATIVE
        return Analysis(metrics, details)

    def summary(self, task: Task, analysis: Analysis, opts: Any) -> SummaryLine | None:
        m = analysis.metrics.get("accuracy")
        if m is None:
            return None
        if analysis.details.get("informative"):
            verdict, level = f"judge right on {m.value:.0%} of planted pairs", "good" if m.ci_low > 0.8 else "warn"
        else:
            because = analysis.details.get("uninformative_because") or "CI reaches chance (50%)"
            verdict, level = f"{UNINFORMATIVE}: {m.value:.0%} right on planted pairs, {because}", "bad"
        return self.line(task, analysis, "accuracy", verdict, level)
