"""Compositionality: the gap of Press et al. (2022) on two-hop questions from the country KB.

A thin adapter over `llmassay.compositionality`: each item of a two-hop task
(`country_twohop`: "What is the currency of the country whose capital is Lima?") is asked
as its two single-hop sub-questions (direct prompting) and, in every mode of
`-P compositionality.prompting` (direct, cot, self_ask), as the two-hop question. Reported:
single-hop and two-hop accuracy, the compositionality gap (two-hop misses among items whose
both hops were right, Wilson CI, n = that subset), the mean generated tokens per item, and
each mode's paired difference with direct. The prompts are few-shot transcripts sent raw,
also to chat models (as the paper prompted GPT-3), so every model sees the same text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmassay.compositionality.gap import NOT_MEASURABLE, both_right, gap_metrics, missed, tables
from llmassay.compositionality.prompts import MODES, final_answer, follow_ups, prompt, stop
from llmassay.compositionality.scoring import score_country, score_value
from llmassay.factuality.kb import bundled_kb
from llmassay.probes._options import option
from llmassay.probes.base import Analysis, Preset, Probe, ProbeConfig, Row, SampleMetric, SummaryLine
from llmassay.types import GenerateRequest, Sample

if TYPE_CHECKING:
    from llmassay.engine.engine import Engine
    from llmassay.tasks.loader import Task

GAP_GOOD, GAP_WARN = 0.2, 0.5  # summary card: share of both-hops-right items missed as two-hop
FEW_ITEMS = 10  # a gap over fewer items than this is called too few to tell


@dataclass(frozen=True)
class CompositionalityOptions:
    prompting: tuple[str, ...] = option(MODES, "two-hop prompting modes: direct, cot (chain of thought), self_ask",
                                    choices=MODES)
    answer_tokens: int = option(16, "tokens for a direct answer (single hops and direct mode)", minimum=1)
    reasoning_tokens: int = option(96, "tokens for a cot or self_ask generation", minimum=8)


def _per_mode(key: str, help_text: str, binary: bool = True) -> SampleMetric:
    def read(row: Row) -> dict[str, Any]:
        return {m: e[key] for m, e in row["modes"].items()}

    return SampleMetric(read, help_text, family=True, binary=binary)


def _gap(row: Row) -> dict[str, Any]:
    return {m: missed(row, m) for m in row["modes"]} if both_right(row) else {}


class CompositionalityProbe(Probe):
    name = "compositionality"
    description = "two-hop questions vs their single hops: the compositionality gap (Press et al. 2022), cot, self-ask"
    challenge = "compositional reasoning"
    task_types = ("generate_until",)
    Options = CompositionalityOptions
    schema_version = 1
    sample_metrics = {
        "hop1": SampleMetric(lambda row: row["hop1"]["correct"], "hop 1 (which country has capital C) right"),
        "hop2": SampleMetric(lambda row: row["hop2"]["correct"], "hop 2 (the field of that country) right"),
        "two_hop": _per_mode("correct", "the two-hop question right, per mode"),
        "gap": SampleMetric(_gap, "two-hop missed, per mode, on items whose both hops are right", family=True),
        "tokens": _per_mode("tokens", "generated tokens of the two-hop answer, per mode", binary=False),
    }
    # No "quick" preset: `assess --quick` (make demo) stays the core probes'; `--full` runs this one.
    presets = {"full": Preset(("country_twohop",), limit=100)}

    def supports(self, task: Task) -> str | None:
        doc = task.samples[0].doc if task.samples else {}
        if task.output_type != "generate_until" or not all(k in doc for k in ("country", "field", "hop1", "hop2")):
            return f"task '{task.name}' has no two-hop items (country, field, hop1, hop2: use country_twohop)"
        return None

    def evaluate(self, task: Task, samples: list[Sample], engine: Engine, opts: Any, cfg: ProbeConfig) -> list[Row]:
        kb = bundled_kb()
        docs = [s.doc for s in samples]

        def ask(questions: list[str], mode: str) -> list[Any]:
            tokens = opts.answer_tokens if mode == "direct" else opts.reasoning_tokens
            return engine.generate([GenerateRequest(prompt=prompt(q, mode), max_tokens=tokens, stop=stop(mode),
                                                    temperature=cfg.temperature, seed=cfg.seed) for q in questions])

        hop1 = ask([str(d["hop1"]["question"]) for d in docs], "direct")
        hop2 = ask([str(d["hop2"]["question"]) for d in docs], "direct")
        rows: list[Row] = [{
            "id": s.id, "relation": str(d.get("relation", d["field"])), "country": str(d["country"]),
            "field": str(d["field"]),
            "hop1": score_country(kb, str(d["country"]), final_answer(g1.text, "direct") or ""),
            "hop2": score_value(kb, str(d["country"]), str(d["field"]), final_answer(g2.text, "direct")),
            "modes": {},
        } for s, d, g1, g2 in zip(samples, docs, hop1, hop2)]
        for mode in opts.prompting:
            for row, d, g in zip(rows, docs, ask([str(d["question"]) for d in docs], mode)):
                answer = final_answer(g.text, mode)
                entry = {"text": g.text, **score_value(kb, row["country"], row["field"], answer),
                         "parsed": answer is not None, "tokens": g.n_tokens}
                if mode == "self_ask":
                    entry["follow_ups"] = [list(p) for p in follow_ups(g.text)]
                row["modes"][mode] = entry
        return rows

    def analyse(self, task: Task, rows: list[Row], opts: Any, cfg: ProbeConfig) -> Analysis:
        metrics = gap_metrics(rows, opts.prompting, cfg.seed)
        details: dict[str, Any] = {"tables": ["modes", "relations"], **tables(rows, opts.prompting, metrics, cfg.seed),
                                   "both_hops_right": sum(both_right(r) for r in rows), "items": len(rows)}
        return Analysis(metrics, details)

    def summary(self, task: Task, analysis: Analysis, opts: Any) -> SummaryLine | None:
        mode = opts.prompting[0]
        gap = analysis.metrics.get(f"gap[{mode}]")
        if gap is None:
            return self.line(task, analysis, f"two_hop[{mode}]",
                             f"gap {NOT_MEASURABLE}; two-hop accuracy {analysis.metrics[f'two_hop[{mode}]'].value:.0%}",
                             "info")
        if gap.n < FEW_ITEMS:
            return self.line(task, analysis, f"gap[{mode}]",
                             f"only {gap.n} items have both hops right: too few to tell the gap ({mode})", "info")
        level = "good" if gap.value <= GAP_GOOD else "warn" if gap.value <= GAP_WARN else "bad"
        return self.line(task, analysis, f"gap[{mode}]", f"misses {gap.value:.0%} of two-hop questions whose both "
                         f"hops it answers ({mode}, n = {gap.n})", level)
