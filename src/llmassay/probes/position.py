"""Lost in the middle: accuracy by the position of the one passage that holds the answer.

Each task item is a passage with a question only it answers (`passage`, `question`,
`answer` fields; the bundled `position_sample` has documents about invented villages).
The item's passage is shown among `passages − 1` distractors — the next items' passages
in task order (`distractors=task`), or documents about real countries from the factuality
KB drawn by seed (`distractors=kb`), always in the same order for one item — at every
position in turn, then the question;
a closed-book prompt (the question alone) is the reference of guessing. Scoring is exact:
the answer must appear in the reply.

Accuracy per position is a Wilson interval over items (one cell per item); the overall
accuracy and the shape are bootstraps over items, each item a cluster of its positions
(`details.clustering` gives the clusters and the design effect of pooling the cells). With
`distractors=task` neighbouring items also show each other's passages; these windows overlap,
so they form no partition to cluster on, and the item stays the unit. The shape is a quadratic fit over
positions from −1 (first document) to +1 (last), x = −1 + 2(p − 1)/(passages − 1) for the
positions tested (`-P position.positions=1,2,10` is not evenly spaced), with bootstrap CIs
over items: `u_term` (> 0: a U, Liu et al.'s lost-in-the-middle) and `recency_slope` (> 0:
better near the question); `middle_drop`, `first_gain` and `last_gain` compare the first
and last documents with the tested positions between them (reported when those were tested).
Prompts that differ only from the gold passage's position onwards share their prefix, so
a backend reusing a shared prefix's KV cache (llama.cpp) prefills it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from llmassay.longctx.distractors import SOURCES, Document, kb_distractors, kb_documents, task_distractors
from llmassay.longctx.needles import found
from llmassay.longctx.prompt import request
from llmassay.longctx.shape import fit_shape, position_x
from llmassay.metrics import bootstrap_mean, cell_clustering, proportion
from llmassay.probes._options import option
from llmassay.probes.base import Analysis, Preset, Probe, ProbeConfig, Row, SampleMetric, SummaryLine
from llmassay.types import LlmassayError, Sample
from llmassay.design import could_have_seen

if TYPE_CHECKING:
    from llmassay.engine.engine import Engine
    from llmassay.tasks.loader import Task

INSTRUCTION = "Answer the question using the documents below. Only one of them holds the answer."
CLOSED_BOOK = "Answer the question."
PROMPT_FORMATS = ("auto", "chat", "raw")
FIELDS = ("passage", "question", "answer")
EPS = 1e-9  # a fit on constant accuracies is 0 up to float noise


def _whole_positions(values: tuple[str, ...]) -> None:
    if not all(v.isdigit() and int(v) >= 1 for v in values):
        raise LlmassayError(f"{','.join(values)}: positions are whole numbers from 1")


@dataclass(frozen=True)
class PositionOptions:
    passages: int = option(10, "documents shown per prompt (one holds the answer)", minimum=2, maximum=50)
    distractors: str = option("task", "task: the task's next items (same template, hardest); kb: documents about "
                              "real countries from the factuality KB, drawn by seed (needs the facts extra)",
                              choices=SOURCES)
    positions: tuple[str, ...] = option((), "positions of the gold document to test, 1-based (default: all)",
                                        check=_whole_positions)
    closed_book: bool = option(True, "also ask each question without documents (the guessing baseline)")
    answer_tokens: int = option(24, "tokens the answer may take", minimum=1)
    prompt_format: str = option("auto", "auto (chat when the model has a template), chat or raw", choices=PROMPT_FORMATS)


def _positions(opts: PositionOptions) -> list[int]:
    """0-based positions to test, checked against the number of passages."""
    if not opts.positions:
        return list(range(opts.passages))
    try:
        chosen = sorted({int(p) - 1 for p in opts.positions})
    except ValueError:
        raise LlmassayError(f"-P position.positions: {','.join(opts.positions)} are not whole numbers") from None
    if chosen[0] < 0 or chosen[-1] >= opts.passages:
        raise LlmassayError(f"-P position.positions: positions run from 1 to passages={opts.passages}")
    return chosen


def documents(passages: list[str]) -> str:
    return "\n\n".join(f"Document [{i}]: {p}" for i, p in enumerate(passages, 1))


class PositionProbe(Probe):
    name = "position"
    description = "lost in the middle: accuracy by the position of the passage holding the answer"
    challenge = "long context"
    task_types = ("generate_until",)
    Options = PositionOptions
    schema_version = 2  # 2: the fit's x is each tested position's place among all passages, not evenly spaced
    sample_metrics = {
        "found": SampleMetric(lambda row: {str(k): v for k, v in row["positions"].items()},
                              "1 if the answer was found with the gold document at this position", family=True),
        "closed_book": SampleMetric(lambda row: row.get("closed_book"), "1 if answered without documents"),
    }
    presets = {
        "quick": Preset(("position_sample",), limit=5, options=(("passages", 3),)),
        "full": Preset(("position_sample",), limit=40),
    }

    def supports(self, task: Task) -> str | None:
        reason = super().supports(task)
        if reason:
            return reason
        if task.samples and any(f not in task.samples[0].doc for f in FIELDS):
            return f"task '{task.name}' lacks the fields passage, question and answer"
        return None

    def evaluate(self, task: Task, samples: list[Sample], engine: Engine, opts: PositionOptions, cfg: ProbeConfig) -> list[Row]:
        chat = opts.prompt_format == "chat" or (opts.prompt_format == "auto" and cfg.chat_model)
        index = {s.id: i for i, s in enumerate(task.samples)}
        positions = _positions(opts)
        if opts.distractors == "task" and len(task.samples) < opts.passages:
            raise LlmassayError(f"-P position.passages={opts.passages}: task {task.name} has only {len(task.samples)} items "
                                "to draw distractors from")
        own = [Document(s.id, s.doc["passage"]) for s in task.samples]
        pool = kb_documents() if opts.distractors == "kb" else ()

        def ask(context: str, question: str, instruction: str = INSTRUCTION) -> Any:
            return request(instruction, context, question, chat, opts.answer_tokens, cfg.seed, cfg.temperature)

        reqs, drawn = [], {}
        for s in samples:
            k = opts.passages - 1
            chosen = (kb_distractors(pool, s.id, str(s.doc["answer"]), k, cfg.seed) if opts.distractors == "kb"
                      else task_distractors(own, index[s.id], k))
            drawn[s.id] = [d.id for d in chosen]
            others = [d.text for d in chosen]
            for pos in positions:
                reqs.append(ask(documents(others[:pos] + [s.doc["passage"]] + others[pos:]), s.doc["question"]))
            if opts.closed_book:
                reqs.append(ask("(no documents)", s.doc["question"], CLOSED_BOOK))
        answers = iter(engine.generate(reqs))
        rows = []
        for s in samples:
            gens = {pos + 1: next(answers) for pos in positions}
            row: Row = {
                "id": s.id,
                "answer": str(s.doc["answer"]),
                "distractors": drawn[s.id],
                "positions": {str(p): found(g.text, str(s.doc["answer"])) for p, g in gens.items()},
                "generations": {str(p): g.text for p, g in gens.items()},
                "prompt_tokens": sum(g.n_prompt_tokens for g in gens.values()),
                "latency_s": round(sum(g.latency_s for g in gens.values()), 6),
            }
            if opts.closed_book:
                book = next(answers)
                row["closed_book"] = found(book.text, str(s.doc["answer"]))
                row["closed_book_generation"] = book.text
            rows.append(row)
        return rows

    def analyse(self, task: Task, rows: list[Row], opts: PositionOptions, cfg: ProbeConfig) -> Analysis:
        keys = sorted({int(k) for r in rows for k in r.get("positions", {})})
        if not rows or not keys:
            return Analysis({}, {})
        matrix = np.array([[float(r["positions"][str(k)]) for k in keys] for r in rows])
        metrics = {f"accuracy[{k}]": proportion(matrix[:, j].tolist()) for j, k in enumerate(keys)}
        metrics["accuracy"] = bootstrap_mean(matrix.mean(1), seed=cfg.seed)  # each item once
        book = [r["closed_book"] for r in rows if "closed_book" in r]
        if book:
            metrics["closed_book"] = proportion(book)
        if len(keys) >= 3:
            shape = fit_shape(matrix, position_x(keys, opts.passages), seed=cfg.seed)
            metrics.update(u_term=shape.u_term, recency_slope=shape.recency_slope)
            metrics.update({name: m for name, m in (("middle_drop", shape.middle_drop), ("first_gain", shape.first_gain),
                                                    ("last_gain", shape.last_gain)) if m is not None})
        details = {
            "passages": opts.passages,
            "distractors": opts.distractors,
            "positions": keys,
            "curve": {"positions": keys, "accuracy": matrix.mean(0).round(6).tolist()},
            "fit": ("accuracy = a + b*x + c*x^2 with x = -1 + 2(position - 1)/(passages - 1), from -1 (first document) "
                    "to +1 (last); u_term = c, recency_slope = b; middle: the tested positions other than the first "
                    "and last document"),
            # an item's positions share its passage and question: the unit of every interval is the item
            "clustering": cell_clustering(matrix.tolist()),
            "prompt_tokens": int(sum(r.get("prompt_tokens", 0) for r in rows)),
            "latency_s": round(sum(r.get("latency_s", 0.0) for r in rows), 3),
        }
        return Analysis(metrics, details)

    def summary(self, task: Task, analysis: Analysis, opts: PositionOptions) -> SummaryLine | None:
        u, slope = analysis.metrics.get("u_term"), analysis.metrics.get("recency_slope")
        if u is None or slope is None:
            return None
        ends = [analysis.metrics.get(k) for k in ("first_gain", "last_gain")]
        if u.interval()[0] > EPS and all(e is not None and e.interval()[0] > EPS for e in ends):
            return self.line(task, analysis, "u_term", "lost in the middle: better at both ends than in the middle", "warn")
        if slope.interval()[0] > EPS:
            return self.line(task, analysis, "recency_slope", "recency: answers better when the passage is near the question", "warn")
        if slope.interval()[1] < -EPS:
            return self.line(task, analysis, "recency_slope", "primacy: answers better when the passage comes first", "warn")
        return self.line(task, analysis, "u_term", "no position effect the CIs can tell from noise"
                         + could_have_seen(u.ci_low, u.ci_high, "a U-term"), "good")

