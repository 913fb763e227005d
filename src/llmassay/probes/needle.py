"""Needle in a haystack: retrieval accuracy over context length × needle depth, and the
effective context length.

Each task item is a needle (`needle`, `question`, `answer` fields; the bundled
`needle_sample` has pass keys, UUIDs, key-value numbers and needles sharing no word with
their question). For every cell of the grid the item's needle is hidden at that depth in
filler prose cut to that length in the model's own tokens, and the question follows the
text. Scoring is exact: the answer must appear in the reply as a whole token (no judge).

The CI unit is the item (`details.clustering`: the items as clusters of cells, and the
design effect pooling the cells would ignore; every item shares the one filler text, a fixed
condition like the grid, not a sampled source): a cell's accuracy is a Wilson interval over items, a length's
accuracy a bootstrap over items of their mean over depths, and a kind's share of cells found
(`details.by_kind`) a clustered-proportion interval over that kind's items (n = items). `effective_length` is the
longest length up to which every length's lower CI bound stays at or above 0.85 × the
shortest length's accuracy (RULER's idea, started at 256 tokens instead of 4K).

Cost: all haystacks start with the same filler sentences and the question comes last, so
a backend that reuses the KV cache of a shared prefix (llama.cpp) prefills that prefix once
for every depth, length and question; with `needles=k` one haystack carries k needles and
all k questions are asked of it. Each cell records its prompt tokens, the tokens left to
prefill after the previous request in the engine's order, and its latency.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from llmassay.longctx.cost import prefill_tokens as _prefill_tokens
from llmassay.longctx.grid import (
    BASE_LENGTH,
    EFFECTIVE_RATIO,
    cell_key,
    context_window,
    effective_length,
    parse_depths,
    parse_lengths,
    resolve_lengths,
)
from llmassay.longctx.haystack import Filler, Placed, build_haystack, read_filler
from llmassay.longctx.needles import Needle, companions, found
from llmassay.longctx.prompt import overhead, prompt_text, request
from llmassay.metrics import bootstrap_mean, cell_clustering, clustered_proportion, proportion
from llmassay.probes._options import option
from llmassay.probes.base import Analysis, Preset, Probe, ProbeConfig, Row, SampleMetric, SummaryLine
from llmassay.types import LlmassayError, Metric, Sample

if TYPE_CHECKING:
    from llmassay.engine.engine import Engine
    from llmassay.tasks.loader import Task

INSTRUCTION = "Below is a long text. A fact is hidden somewhere in it. Read it, then answer the question after it."
DEFAULT_DEPTHS = ("0", "0.25", "0.5", "0.75", "1")
PROMPT_FORMATS = ("auto", "chat", "raw")
GOOD_SHARE = 0.9  # summary card: effective length ≥ 90 % of the longest length run is good
# The default grid (all 40 bundled needles × 256, 512, 1024, 2048 × 5 depths at the default
# n_ctx=2048) is sized to about 20 minutes per bundled model on 2 idle cores: counted by
# scripts/longctx_cost.py, SmolLM2 sends 625,555 prompt tokens of which 266,239 are left
# to prefill after shared prefixes; at 330 tok/s (plus attention's cost per position) and
# its answers, 18-24 min (Gemma-3-270M: 275,561, 16-27 min). README "Long context" has the arithmetic.


def _lengths_ok(values: tuple[str, ...]) -> None:
    parse_lengths(values, "lengths")


def _depths_ok(values: tuple[str, ...]) -> None:
    parse_depths(values, "depths")


def _file_exists(path: str) -> None:
    if path and not os.path.isfile(path):
        raise LlmassayError(f"{path} is not a file")


@dataclass(frozen=True)
class NeedleOptions:
    lengths: tuple[str, ...] = option((), "context lengths in the model's tokens (default: 256 doubling up to max_len; "
                                      "256-2048 x 5 depths x 40 needles is about 20 min per bundled model on 2 idle "
                                      "cores; each doubling of the longest length a bit more than doubles it)",
                                      check=_lengths_ok)
    depths: tuple[str, ...] = option(DEFAULT_DEPTHS, "needle depths, 0 = start of the text, 1 = end", check=_depths_ok)
    max_len: int | None = option(None, "longest length (default: the loaded context window)", minimum=64)
    haystack: str = option("", "filler text file (default: bundled News from Nowhere, public domain)", check=_file_exists)
    needles: int = option(1, "needles per haystack (the item's own plus others from the task)", minimum=1, maximum=8)
    ask_all: bool = option(True, "with needles > 1: ask every needle's question of the same haystack")
    # 64: a chat model restates the question before a 36-character UUID (32 cut it, RULER #99)
    answer_tokens: int = option(64, "tokens the answer may take", minimum=1)
    prompt_format: str = option("auto", "auto (chat when the model has a template), chat or raw", choices=PROMPT_FORMATS)


def _cells(field: str, binary: bool = True) -> SampleMetric:
    def read(row: Row) -> dict[str, Any]:
        return {k: c.get(field) for k, c in (row.get("cells") or {}).items() if isinstance(c, dict)}

    return SampleMetric(read, f"{field} per length@depth cell", family=True, binary=binary)


@dataclass(frozen=True)
class _Cell:
    length: int
    depth: float

    @property
    def key(self) -> str:
        return cell_key(self.length, self.depth)


class NeedleProbe(Probe):
    name = "needle"
    description = "needle retrieval over context length x depth; effective context length"
    challenge = "long context"
    task_types = ("generate_until",)
    Options = NeedleOptions
    schema_version = 2  # 2: details.by_kind is over needles (n = items), not pooled cells
    sample_metrics = {"found": _cells("found"), "all_found": _cells("all_found", binary=False)}
    presets = {
        "quick": Preset(("needle_sample",), limit=4, options=(("depths", "0,1"), ("max_len", 512))),
        "full": Preset(("needle_sample",)),  # the default grid: about 20 min per bundled model (see above)
    }

    def supports(self, task: Task) -> str | None:
        reason = super().supports(task)
        if reason:
            return reason
        if task.samples and "needle" not in task.samples[0].doc:
            return f"task '{task.name}' has no `needle` field (items need needle, question and answer)"
        return None

    # -- evaluate ---------------------------------------------------------------------------
    def evaluate(self, task: Task, samples: list[Sample], engine: Engine, opts: NeedleOptions, cfg: ProbeConfig) -> list[Row]:
        backend = engine.backend
        lengths = resolve_lengths(opts.lengths, opts.max_len, context_window(backend))
        depths = parse_depths(opts.depths)
        chat = opts.prompt_format == "chat" or (opts.prompt_format == "auto" and cfg.chat_model)
        filler = Filler(read_filler(opts.haystack or None), backend.tokenize)
        needles = [Needle.from_doc(s.doc, f"task {task.name}, item {s.id}") for s in task.samples]
        index = {s.id: i for i, s in enumerate(task.samples)}
        spare = overhead(opts.answer_tokens, chat)

        plans: list[tuple[Sample, _Cell, list[Needle], float]] = []
        requests = []
        for sample in samples:
            own = needles[index[sample.id]]
            group = [own, *companions(needles, index[sample.id], opts.needles)] if opts.needles > 1 else [own]
            asked = group if opts.ask_all else [own]
            longest_q = max((n.question for n in asked), key=filler.tokens)
            for length in lengths:
                for depth in depths:
                    placed = _placements(group, depth)

                    def measure(text: str, q: str = longest_q) -> int:
                        return filler.tokens(prompt_text(INSTRUCTION, text, q, chat)) + spare

                    hay = build_haystack(filler, placed, length, measure)
                    plans.append((sample, _Cell(length, depth), asked, hay.needle_depth))
                    requests += [request(INSTRUCTION, hay.text, n.question, chat, opts.answer_tokens, cfg.seed,
                                         cfg.temperature) for n in asked]
        answers = engine.generate(requests)
        prefill = _prefill_tokens(requests, backend)

        rows: dict[str, Row] = {s.id: {"id": s.id, "kind": s.doc.get("kind", "custom"), "answer": str(s.target), "cells": {}}
                                for s in samples}
        at = 0
        for sample, cell, asked, landed in plans:
            gens = answers[at : at + len(asked)]
            hits = [found(g.text, n.answer) for g, n in zip(gens, asked)]
            entry: dict[str, Any] = {
                "found": hits[0],
                "depth_actual": round(landed, 4),  # the sentence boundary nearest the asked depth
                "generation": gens[0].text,
                "prompt_tokens": sum(g.n_prompt_tokens for g in gens),
                "tokens": sum(g.n_prompt_tokens + g.n_tokens for g in gens),
                "prefill_tokens": sum(prefill[at : at + len(asked)]),
                "latency_s": round(sum(g.latency_s for g in gens), 6),
                "truncated": max(g.n_truncated_tokens for g in gens),
            }
            if len(asked) > 1:
                entry["all_found"] = sum(hits) / len(hits)
            rows[sample.id]["cells"][cell.key] = entry
            at += len(asked)
        return [rows[s.id] for s in samples]

    # -- analyse ----------------------------------------------------------------------------
    def analyse(self, task: Task, rows: list[Row], opts: NeedleOptions, cfg: ProbeConfig) -> Analysis:
        keys = list(dict.fromkeys(k for r in rows for k in r.get("cells", {})))
        lengths = sorted({int(k.split("@")[0]) for k in keys})
        depths = sorted({float(k.split("@")[1]) for k in keys})
        if not rows or not keys:
            return Analysis({}, {"lengths": lengths, "depths": depths})
        hit = np.array([[float(r["cells"].get(cell_key(n, d), {}).get("found", np.nan)) for n in lengths for d in depths]
                        for r in rows]).reshape(len(rows), len(lengths), len(depths))
        metrics = {"accuracy": bootstrap_mean(np.nanmean(hit, axis=(1, 2)), seed=cfg.seed)}
        for j, n in enumerate(lengths):
            for i, d in enumerate(depths):
                column = hit[:, j, i]
                metrics[f"accuracy[{cell_key(n, d)}]"] = proportion(column[~np.isnan(column)].tolist())
        eff = effective_length(np.nanmean(hit, axis=2), lengths, seed=cfg.seed)
        for n, m in eff.by_length.items():
            metrics[f"accuracy_by_length[{n}]"] = m
        for i, d in enumerate(depths):
            metrics[f"accuracy_by_depth[{d:g}]"] = bootstrap_mean(np.nanmean(hit[:, :, i], axis=1), seed=cfg.seed)
        metrics["effective_length"] = eff.metric
        multi = [c["all_found"] for r in rows for c in r["cells"].values() if "all_found" in c]
        if multi:
            metrics["all_found"] = bootstrap_mean(
                [np.mean([c["all_found"] for c in r["cells"].values()]) for r in rows], seed=cfg.seed)
        details = {
            "lengths": lengths,
            "depths": depths,
            "effective_length_rule": (
                f"longest length with every length's lower 95% CI >= {EFFECTIVE_RATIO} x the accuracy at {lengths[0]}"
                + ("" if lengths[0] == BASE_LENGTH else f" (the grid starts at {lengths[0]}, not {BASE_LENGTH})")
            ),
            "base_accuracy": eff.base_accuracy,
            "threshold": eff.threshold,
            "heatmap": {"lengths": lengths, "depths": depths,
                        "accuracy": [[_mean(hit[:, j, i]) for i in range(len(depths))] for j in range(len(lengths))]},
            "cost": _cost(rows, keys),
            "by_kind": {kind: m.as_dict() for kind, m in by_kind(rows).items()},
            # an item's cells share its needle and question: intervals over cells are over items
            "clustering": cell_clustering([[bool(c["found"]) for c in r["cells"].values()] for r in rows]),
        }
        return Analysis(metrics, details)

    def summary(self, task: Task, analysis: Analysis, opts: NeedleOptions) -> SummaryLine | None:
        eff = analysis.metrics.get("effective_length")
        lengths = analysis.details.get("lengths") or []
        if eff is None or not lengths:
            return None
        if eff.value != eff.value:
            return self.line(task, analysis, "effective_length", "no needle found even at the shortest length", "bad")
        share = eff.value / lengths[-1]
        verdict = f"holds {eff.value:.0f} of the {lengths[-1]} tokens tested"
        return self.line(task, analysis, "effective_length", verdict,
                         "good" if share >= GOOD_SHARE else "warn" if eff.value > lengths[0] else "bad")


def by_kind(rows: list[Row]) -> dict[str, Metric]:
    """Share of cells found per needle kind, with the item as the unit (n = needles): an
    item's cells share its needle, so they are not independent draws."""
    kinds = sorted({str(r.get("kind")) for r in rows})
    return {kind: clustered_proportion([[bool(c["found"]) for c in r["cells"].values()]
                                        for r in rows if str(r.get("kind")) == kind]) for kind in kinds}


def _placements(group: Sequence[Needle], depth: float) -> list[Placed]:
    """The item's needle at `depth`; the others spread evenly over the rest of the text."""
    k = len(group)
    return [Placed(n.text, depth if i == 0 else (depth + i / k) % 1.0) for i, n in enumerate(group)]


def _mean(values: np.ndarray) -> float | None:
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else None


def _cost(rows: list[Row], keys: list[str]) -> dict[str, Any]:
    """Tokens and time per cell (summed over items) and for the run."""
    per_cell = {}
    for k in keys:
        cells = [r["cells"][k] for r in rows if k in r["cells"]]
        per_cell[k] = {
            "prompt_tokens": int(sum(c["prompt_tokens"] for c in cells)),
            "prefill_tokens": int(sum(c["prefill_tokens"] for c in cells)),
            "tokens": int(sum(c["tokens"] for c in cells)),
            "latency_s": round(sum(c["latency_s"] for c in cells), 3),
        }
    prompt = sum(c["prompt_tokens"] for c in per_cell.values())
    prefill = sum(c["prefill_tokens"] for c in per_cell.values())
    return {
        "per_cell": per_cell,
        "prompt_tokens": prompt,
        "prefill_tokens": prefill,
        "shared_prefix_share": (1 - prefill / prompt) if prompt else 0.0,
        "latency_s": round(sum(c["latency_s"] for c in per_cell.values()), 3),
        "truncated_cells": sum(1 for r in rows for c in r["cells"].values() if c.get("truncated")),
    }
