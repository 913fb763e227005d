"""Knowledge editing measured the CounterFact way, on whatever model is loaded.

A thin adapter over `llmassay.editing.scores`: each item of an edit task (`country_edits`:
subject, prompt, old, new, paraphrases, neighbourhood) is scored by log-likelihood through
the engine — efficacy (P(new) > P(old) on the edit prompt), paraphrase (the same on
rewordings), neighbourhood (P(true) > P(new) on prompts the edit should not touch) and
fluency (the n-gram entropy of greedy free generations from the edit's prompts, ROME's
"generation entropy"; `-P editing.fluency_tokens=0` skips the generations).
The probe edits nothing: run it on the unedited model and on the model with the edits
applied (`--model-args edits=DIR`, the folder `llmassay edit` writes, all edits at once),
and `llmassay compare` pairs the two runs item by item. On the unedited model efficacy is
the share of edits the model already "believes" (near 0 for counterfactuals) and
neighbourhood is its baseline knowledge of the neighbours.

`-P editing.rag=bm25` (or dense) adds the other remedy on the same edits and prompts: the
model as loaded, reading the top-k passages retrieved from the country KB edited as the
edits say (`editing.retrieval`), scored the same way (`rag_efficacy`, ...), with the paired
difference retrieval − as loaded over edits. Run it on the unedited model for the
"unedited + retrieval" column beside the unedited and the edited runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmassay.editing.edits import edit_from_doc
from llmassay.editing.scores import FLUENCY_TOKENS, METRICS, paired_gaps, score_edits, summarise
from llmassay.probes._options import option
from llmassay.probes.base import Analysis, Probe, ProbeConfig, Row, SampleMetric, SummaryLine
from llmassay.types import Sample

if TYPE_CHECKING:
    from llmassay.engine.engine import Engine
    from llmassay.tasks.loader import Task

HELP = {
    "efficacy": "1 if the new object beats the old on the edit prompt (mean log-prob per token)",
    "paraphrase": "share of paraphrase prompts where the new object beats the old",
    "neighbourhood": "share of neighbourhood prompts where the true object still beats the new one",
    "fluency": "n-gram entropy (bits; ROME's weighted bi- and trigram entropy) of greedy generations from the edit's prompts",
}


RAG = ("none", "bm25", "dense")


@dataclass(frozen=True)
class EditingOptions:
    fluency_tokens: int = option(FLUENCY_TOKENS, "greedy tokens generated from each edit prompt and rewording for "
                                 "the fluency score (0: no generations, no fluency)", minimum=0)
    rag: str = option("none", "also score each edit with the top-k passages retrieved from the country KB edited "
                      "as the edits say (bm25, dense; edit ids must be <ISO code>.<field>)", choices=RAG)
    k: int = option(3, "passages retrieved per prompt (rag)", minimum=1, maximum=20)


def _reader(metric: str) -> Callable[[Row], Any]:
    return lambda row: row.get(metric)


class EditingProbe(Probe):
    name = "editing"
    description = "knowledge edits: efficacy, paraphrase and neighbourhood scores (CounterFact's), per edit"
    challenge = "outdated knowledge (editing)"
    task_types = ("multiple_choice",)
    Options = EditingOptions
    sample_metrics = {
        **{m: SampleMetric(_reader(m), HELP[m], binary=(m == "efficacy")) for m in (*METRICS, "fluency")},
        **{f"rag_{m}": SampleMetric(_reader(f"rag_{m}"), HELP[m] + ", reading retrieval from the edited KB (-P rag)",
                                    binary=(m == "efficacy")) for m in METRICS},
    }

    def supports(self, task: Task) -> str | None:
        doc = task.samples[0].doc if task.samples else {}
        if not {"subject", "prompt", "old", "new"} <= set(doc):
            return f"task '{task.name}' has no subject/prompt/old/new fields (an edit task such as country_edits)"
        return None

    def evaluate(self, task: Task, samples: list[Sample], engine: Engine, opts: Any, cfg: ProbeConfig) -> list[Row]:
        edits = [edit_from_doc({**s.doc, "id": s.id}, f"task '{task.name}' item {s.id}") for s in samples]
        tokens = getattr(opts, "fluency_tokens", FLUENCY_TOKENS)
        rows = score_edits(edits, engine.loglikelihood, engine.generate if tokens else None, tokens)
        if opts is not None and opts.rag != "none":
            from llmassay.editing.retrieval import edited_index, rag_rows

            index = edited_index([(str(s.doc.get("id", s.id)), e) for s, e in zip(samples, edits)], opts.rag)
            for row, rag in zip(rows, rag_rows(edits, index, opts.k, engine.loglikelihood)):
                row.update({f"rag_{m}": rag[m] for m in (*METRICS, "margin")}, rag_retrieved=rag["retrieved"])
        return rows

    def analyse(self, task: Task, rows: list[Row], opts: Any, cfg: ProbeConfig) -> Analysis:
        metrics = summarise(rows)
        notes = ["Scores of the model as loaded: compare a run with --model-args edits=DIR against one without. "
                 "Objects are compared by mean log-probability per token (ROME's CounterFact evaluation). "
                 "paraphrase and neighbourhood enter the Wilson interval as per-edit shares; the unit is the edit. "
                 "fluency: mean n-gram entropy per edit (greedy generations), bootstrap CI over edits."]
        if rows and "rag_efficacy" in rows[0]:
            rag = [{"id": r["id"], **{m: r[f"rag_{m}"] for m in METRICS}} for r in rows]
            metrics.update({f"rag_{m}": v for m, v in summarise(rag).items()})
            metrics.update({f"rag_gap_{m}": v for m, v in paired_gaps(rag, rows, cfg.seed if cfg else 0).items()})
            notes.append("rag_*: the same scores with the passages retrieved from the KB edited as the edits say "
                         "before each prompt; rag_gap_*: rag − as loaded, paired over edits (bootstrap).")
        return Analysis(metrics, {"notes": notes})

    def summary(self, task: Task, analysis: Analysis, opts: Any) -> SummaryLine | None:
        m = analysis.metrics["efficacy"]
        return self.line(task, analysis, "efficacy", f"the new object wins on {m.value:.0%} of edit prompts",
                         "info")
