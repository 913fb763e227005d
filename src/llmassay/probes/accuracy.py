"""Plain task scoring, the baseline every other probe perturbs.

Multiple choice is scored three ways from one run, because they disagree and users
should see by how much: summed log-likelihood (`acc`), log-likelihood per character
(`acc_norm`, as lm-eval; per UTF-8 byte is `acc_bytes`) and the answer the model writes
(`acc_gen`). Generation tasks are scored by exact match after normalisation. Only what the
task's metrics name is asked for: `--metrics acc_gen` sends generations only, so a chat
endpoint without prompt log-probabilities can still answer a multiple-choice task.

Instruct models end their turn where a base model would write the answer, so free
generation goes through the model's chat template when it has one (`chat_template=auto`,
as lm-eval's `--apply_chat_template`); log-likelihood scoring always reads the raw prompt.
In a chat turn the prompt is preceded by one line saying what to reply with, in the form
the task's parser reads (`chat_format=instruct`, `_answer_format`): asked the bare prompt,
SmolLM2 explains, is cut off, and its first operand is read as its answer. `chat_format=bare`
sends the prompt alone, as lm-eval does, for comparison. Rows and details name the line sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from llmassay.metrics import argmax, cluster_robust_proportion, cluster_robust_variance, proportion
from llmassay.probes._answer_format import choice_instruction, generation_instruction, instructed
from llmassay.probes._mc import LOGLIK_METRICS, MCItem, MCScore, score_multiple_choice
from llmassay.probes.base import Analysis, Preset, Probe, ProbeConfig, Row, SampleMetric, SummaryLine
from llmassay.probes._options import option
from llmassay.tasks.corpus_metrics import CORPUS_METRICS, corpus_metric, custom_aggregate, item_mean, perplexity, text_metric
from llmassay.tasks.filters import TEXT_METRICS
from llmassay.tasks.perplexity import score_rolling, weighted_metric
from llmassay.types import GenerateRequest, LlmassayError, LoglikelihoodRequest, Metric, Sample

if TYPE_CHECKING:
    from llmassay.engine.engine import Engine
    from llmassay.tasks.loader import Task

SCORED = ("acc", "acc_norm", "acc_bytes", "acc_gen", "exact_match", "acc_mutual_info")


@dataclass(frozen=True)
class AccuracyOptions:
    chat_template: str = option(
        "auto", "free generation through the model's chat template: auto (chat models, zero-shot tasks), on, off",
        choices=("auto", "on", "off"),
    )
    chat_format: str = option(
        "instruct", "a chat turn says the answer's form the task's parser reads (instruct, e.g. 'Reply with the letter "
        "of the correct option only.') or sends the bare prompt (bare, as lm-eval's --apply_chat_template)",
        choices=("instruct", "bare"),
    )
    cluster: str = option(
        "", "a document field whose value items share (a passage id, a template, a subject): right/wrong metrics "
        "get cluster-robust intervals over its values, with the number of clusters and the design effect, and "
        "compare resamples clusters; empty: the field the task file names as metadata.cluster, else none; "
        "none: items are independent even where the task names a field",
    )
    samples: int = option(
        1, "K answers per item at --temperature > 0 (generation tasks): the item's score is the mean over its K "
        "answers, the CI over items, and the within-item variance is reported for `llmassay plan`", minimum=1,
    )


def uses_chat(opts: AccuracyOptions, cfg: ProbeConfig, task: Task) -> bool:
    """Whether generations go through the chat template (the rule: `wants_chat_template`)."""
    from llmassay.engine.chat import wants_chat_template

    return wants_chat_template(opts.chat_template, cfg.chat_model, task.num_fewshot)


def _flag(name: str) -> SampleMetric:
    """1/0 per item; with `-P accuracy.samples=K` the item's share of its K answers that are right."""
    def read(row: Row) -> bool | float | None:
        value = row.get(name)
        return value if isinstance(value, bool) or (isinstance(value, float) and "samples" in row) else None

    return SampleMetric(read, f"1 if {name} is right (with samples=K: the share of K answers right)")


class AccuracyProbe(Probe):
    name = "accuracy"
    task_types = ("multiple_choice", "generate_until", "loglikelihood", "loglikelihood_rolling")
    per_choice_contexts = True
    description = "the task's own metrics: acc, acc_norm, acc_gen (multiple choice), exact_match (generation)"
    challenge = "accuracy"
    Options = AccuracyOptions
    # 2: rows hold only the requested metrics; chat-template generations. 3: a chat turn says the
    # answer's form (chat_format); acc_gen reads the options the prompt lists (parse_choice)
    schema_version = 3
    sample_metrics = {
        **{name: _flag(name) for name in SCORED},
        "gen_parsed": SampleMetric(
            lambda row: (row["pred_gen"] is not None) if "pred_gen" in row else None, "1 if the answer named a choice"
        ),
    }
    presets = {
        "quick": Preset(("mmlu_sample", "arith_sample"), limit=20),
        "full": Preset(("mmlu_sample", "arith_sample")),
    }


    @classmethod
    def options_record(cls, opts: Any) -> dict[str, Any]:
        """`cluster` and `samples` left at their defaults stay out of the record (and the resume key),
        so runs from before they existed resume and compare as before."""
        record = super().options_record(opts)
        if not record.get("cluster"):
            record.pop("cluster", None)
        if record.get("samples") == 1:
            record.pop("samples", None)
        return record

    def evaluate(self, task: Task, samples: list[Sample], engine: Engine, opts: Any, cfg: ProbeConfig) -> list[Row]:
        field = cluster_field(opts, task)
        keys = cluster_keys(task, samples, field) if field else None  # a missing field fails before any request
        k = _samples(opts, task, cfg)
        if task.output_type == "loglikelihood":
            rows = score_loglikelihood(engine, samples)
        elif task.output_type == "loglikelihood_rolling":
            rows = score_rolling(engine, task, samples)
        else:
            chat = uses_chat(opts, cfg, task)
            instruct = chat and opts.chat_format == "instruct"
            rows = (self._multiple_choice(task, samples, engine, chat, instruct, cfg)
                    if task.output_type == "multiple_choice" else
                    self._generation(task, samples, engine, chat, instruct, cfg, k))
        if keys is not None:  # the source each item comes from: compare's cluster bootstrap reads it
            for row, key in zip(rows, keys):
                row["cluster"] = key
        return rows

    def _multiple_choice(
        self, task: Task, samples: list[Sample], engine: Engine, chat: bool, instruct: bool, cfg: ProbeConfig
    ) -> list[Row]:
        delim = task.target_delimiter
        generate = "acc_gen" in task.metrics
        loglik = task.process_results is not None or any(
            m in LOGLIK_METRICS or m in CORPUS_METRICS or m == "acc_mutual_info" for m in task.metrics)
        generate = generate and task.process_results is None
        items = [MCItem(s.prompt, tuple(s.choices or ()),
                        choice_instruction(s.choices or (), s.prompt) if instruct and generate else "") for s in samples]
        rows = []
        if task.continuations:  # lm-eval's per-choice contexts (winogrande): one continuation after each
            scores = score_partial(engine, samples, task.continuations, delim)
            generate = False
        else:
            scores = score_multiple_choice(engine, items, delim, cfg, generate, loglik=loglik, chat=chat)
        unconditional = unconditional_loglikelihoods(engine, samples, delim) if "acc_mutual_info" in task.metrics else None
        for sample, item, score in zip(samples, items, scores):
            choices = sample.choices or []
            row: Row = {"id": sample.id, "prompt": sample.prompt, "choices": [delim + c for c in choices],
                        "target": sample.target}
            if loglik:
                row.update(
                    loglikelihoods=list(score.loglikelihoods),
                    is_greedy=list(score.is_greedy),
                    pred=score.pred,
                    pred_norm=score.pred_norm(choices),
                    acc=score.pred == sample.target,
                    acc_norm=score.pred_norm(choices) == sample.target,
                )
                if unconditional is not None:  # lm-eval: argmax of log P(c | prompt) − log P(c)
                    mutual = [c - u for c, u in zip(score.loglikelihoods, unconditional[sample.id])]
                    row.update(loglikelihoods_unconditional=unconditional[sample.id],
                               acc_mutual_info=argmax(mutual) == sample.target)
                if "acc_bytes" in task.metrics:
                    row.update(pred_bytes=score.pred_bytes(choices), acc_bytes=score.pred_bytes(choices) == sample.target)
            if task.process_results is not None:  # the task's own scoring replaces ours, as in lm-eval
                row.update(task.custom_scores(sample, list(zip(score.loglikelihoods, score.is_greedy))))
            if score.n_truncated_tokens:  # flagged per sample, counted in the results' engine stats
                row["n_truncated_tokens"] = score.n_truncated_tokens
            if generate:
                parsed = score.pred_gen(choices)
                row.update(generation=score.generation, pred_gen=parsed, acc_gen=parsed == sample.target)
                if chat:
                    row["chat_template"] = True
                if item.instruction:
                    row["instruction"] = item.instruction
            rows.append(row)
        return rows

    def _generation(
        self, task: Task, samples: list[Sample], engine: Engine, chat: bool, instruct: bool, cfg: ProbeConfig,
        n_samples: int = 1,
    ) -> list[Row]:
        kwargs = task.generation_kwargs
        common: dict[str, Any] = dict(
            max_tokens=kwargs["max_gen_toks"], stop=tuple(kwargs["until"]), temperature=cfg.temperature, seed=cfg.seed
        )
        # lm-eval's `repeats`: K answers per item for the filters (majority_vote). Greedy
        # decoding would give K equal answers, so one is asked; sampled ones get seeds seed … seed+K−1.
        # `-P accuracy.samples=K` asks K the same way (each scored on its own, then averaged).
        k = (task.repeats if cfg.temperature > 0 else 1) if n_samples == 1 else n_samples
        said = [generation_instruction(task, task.references(s)) if instruct else "" for s in samples]
        requests = [
            GenerateRequest(messages=(("user", instructed(s.prompt, line)),), **{**common, "seed": cfg.seed + r, "repeat": r})
            if chat else GenerateRequest(prompt=s.prompt, **{**common, "seed": cfg.seed + r, "repeat": r})
            for s, line in zip(samples, said) for r in range(k)
        ]
        answers = engine.generate(requests)
        rows = []
        for i, s in enumerate(samples):
            group = answers[i * k:(i + 1) * k]
            g = group[0]
            texts = [a.text for a in group] * (task.repeats // k if n_samples == 1 else 1)
            row: Row = {
                "id": s.id,
                "prompt": s.prompt,
                "target": s.target,
                "generation": g.text,
                "finish_reason": g.finish_reason,
                "n_tokens": g.n_tokens,
                # lm-eval's filters and list targets, one result per filter
                **task.score_generation(s, texts if task.repeats > 1 else g.text),
            }
            if n_samples > 1:  # the item's score: the mean over its K answers, each scored alone
                per = [task.score_generation(s, t) for t in texts]
                row.update(samples=n_samples, generations=texts, **sample_means(per))
            elif task.repeats > 1:
                row["generations"] = texts
            if chat:
                row["chat_template"] = True
            if said[i]:
                row["instruction"] = said[i]
            if g.n_truncated_tokens:
                row["n_truncated_tokens"] = g.n_truncated_tokens
            rows.append(row)
        return rows

    def analyse(self, task: Task, rows: list[Row], opts: Any, cfg: ProbeConfig) -> Analysis:
        custom = task.scoring.custom if task.scoring is not None else {}
        metrics = {name: weighted_metric(name, task.aggregations[name], rows, cfg.seed) if name in task.aggregations
                   else custom_aggregate(name, custom[name.split(",")[0]], rows, cfg.seed) if name.split(",")[0] in custom
                   else corpus_metric(name, rows, cfg.seed) if name in CORPUS_METRICS
                   else perplexity(rows, cfg.seed) if name == "perplexity"
                   else text_metric(name, rows, cfg.seed) if name.split(",")[0] in TEXT_METRICS
                   else item_mean([r[name] for r in rows]) for name in task.metrics}
        if "acc_gen" in task.metrics:
            metrics["gen_parsed"] = proportion([r.get("pred_gen") is not None for r in rows])
        details: dict[str, Any] = {}
        samples = within_item_variances(rows)
        if samples:
            details["samples"] = samples
        field = cluster_field(opts, task)
        if field:
            details["clustered"] = _clustered(task, rows, metrics, field)
        if _generates(task):
            chat = uses_chat(opts, cfg, task)
            details["chat_template"] = chat
            if chat:  # the line each chat turn began with, in the form the task's parser reads
                details.update(chat_format=opts.chat_format,
                               answer_instructions=list(dict.fromkeys(r["instruction"] for r in rows if "instruction" in r)))
        return Analysis(metrics, details)

    def summary(self, task: Task, analysis: Analysis, opts: Any) -> SummaryLine | None:
        metric = next((m for m in ("acc", "acc_norm", "exact_match", "acc_gen") if m in analysis.metrics),
                      next(iter(analysis.metrics), None))
        if metric is None:
            return None
        m = analysis.metrics[metric]
        chance = _chance(task)
        if chance is not None and m.ci_high < chance + 0.02:
            verdict, level = f"{metric} {m.value:.0%}: no better than chance ({chance:.0%})", "bad"
        elif chance is not None and m.ci_low <= chance:
            verdict, level = f"{metric} {m.value:.0%}: not clearly above chance ({chance:.0%})", "warn"
        else:
            verdict, level = f"{metric} {m.value:.0%} on {task.name}", "info"
        return self.line(task, analysis, metric, verdict, level)


def cluster_field(opts: Any, task: Task) -> str:
    """The document field items are clustered by: `-P accuracy.cluster`, else the one the task file
    declares (`metadata: {cluster: FIELD}`, for tasks with several questions per passage); `none`: no field."""
    if opts.cluster == "none":
        return ""
    return opts.cluster or str((task.config.get("metadata") or {}).get("cluster") or "")


def cluster_keys(task: Task, samples: list[Sample], field: str) -> list[str]:
    """Each item's value of `field`, or a one-line error naming the first item without it."""
    missing = [s.id for s in samples if field not in s.doc]
    if missing:
        raise LlmassayError(f"-P accuracy.cluster={field}: {task.name} item '{missing[0]}' has no field '{field}' "
                            f"({len(missing)} of {len(samples)} items lack it)")
    return [str(s.doc[field]) for s in samples]


def _clustered(task: Task, rows: list[Row], metrics: dict[str, Metric], field: str) -> dict[str, Any]:
    """Replace each right/wrong metric's interval with the cluster-robust one over `field`'s values
    (metrics.cluster_robust_proportion); say how many clusters and the design effect per metric."""
    docs = {s.id: s for s in task.samples}
    keys = [r["cluster"] if "cluster" in r else cluster_keys(task, [docs[r["id"]]], field)[0] for r in rows]
    out: dict[str, Any] = {"field": field, "metrics": {}}
    for name in list(metrics):
        values = [r.get(name) for r in rows]
        if values and all(isinstance(v, bool) for v in values):
            metrics[name], clusters, deff = cluster_robust_proportion(values, keys)
            out["clusters"] = clusters
            out["metrics"][name] = {"design_effect": round(deff, 3)}
        elif values and all(isinstance(v, (bool, float)) and 0 <= v <= 1 for v in values):  # samples=K shares
            var, clusters = cluster_robust_variance([float(v) for v in values], keys)
            naive = float(np.var(np.asarray(values, dtype=float), ddof=1)) / len(values) if len(values) > 1 else 0.0
            metrics[name] = _widened(metrics[name], var, clusters)
            out["clusters"] = clusters
            out["metrics"][name] = {"design_effect": round(var / naive, 3) if naive > 0 else 1.0}
    return out


def _widened(m: Metric, var: float, clusters: int) -> Metric:
    """A mean of item shares with a t interval on the cluster-robust variance (clusters − 1 df)."""
    from llmassay.metrics import t_critical

    if not var == var or clusters < 2:
        return m
    half = t_critical(clusters - 1) * var ** 0.5
    return Metric(m.value, max(0.0, m.value - half), min(1.0, m.value + half), m.n, var ** 0.5,
                  f"t on the cluster-robust variance ({clusters} clusters)")


def _samples(opts: Any, task: Task, cfg: ProbeConfig) -> int:
    """K answers per item, where sampling means something: a generation task at temperature > 0."""
    k = int(opts.samples)
    if k == 1 or task.output_type != "generate_until":
        return 1  # log-likelihood scoring is deterministic: K answers would be K equal ones
    if cfg.temperature <= 0:
        raise LlmassayError(f"-P accuracy.samples={k}: needs --temperature > 0 (greedy decoding gives K equal answers)")
    if task.repeats > 1:
        raise LlmassayError(f"-P accuracy.samples={k}: task {task.name} already asks repeats={task.repeats} answers "
                            "per item for its filters; use one or the other")
    return k


def sample_means(per_answer: list[dict[str, Any]]) -> dict[str, Any]:
    """An item's metrics over its K answers: the mean of each right/wrong or numeric score, and
    the per-answer scores under `sample_scores` (what the within-item variance is read from)."""
    names = [n for n in per_answer[0] if all(isinstance(p.get(n), (bool, int, float)) for p in per_answer)]
    scores = {n: [p[n] for p in per_answer] for n in names}
    return {**{n: float(np.mean(np.asarray(v, dtype=float))) for n, v in scores.items()}, "sample_scores": scores}


def within_item_variances(rows: list[Row]) -> dict[str, Any]:
    """Per metric, from rows with K answers each: the within-item variance of one answer's score
    (the mean over items of each item's sample variance, ddof 1), the variance of the item means,
    and the between-item part (item means' variance − within / K): what `llmassay plan
    --within-var` and `--samples` trade off."""
    scored = [r for r in rows if isinstance(r.get("sample_scores"), dict) and int(r.get("samples", 1)) > 1]
    if not scored:
        return {}
    k = int(scored[0]["samples"])
    out: dict[str, Any] = {"k": k, "items": len(scored), "metrics": {}}
    for name in scored[0]["sample_scores"]:
        per = np.asarray([r["sample_scores"][name] for r in scored if len(r["sample_scores"].get(name, ())) == k],
                         dtype=float)
        if len(per) < 2:
            continue
        within = float(per.var(axis=1, ddof=1).mean())
        means = float(per.mean(axis=1).var(ddof=1))
        out["metrics"][name] = {"within_var": within, "item_means_var": means,
                                "between_var": max(means - within / k, 0.0)}
    return out


def score_loglikelihood(engine: Engine, samples: list[Sample]) -> list[Row]:
    """lm-eval's `loglikelihood` tasks (lambada): log P(target | prompt), and whether greedy
    decoding would have written the target (`acc`)."""
    results = engine.loglikelihood([LoglikelihoodRequest(s.prompt, str(s.target)) for s in samples])
    rows: list[Row] = []
    for s, r in zip(samples, results):
        row: Row = {"id": s.id, "prompt": s.prompt, "target": s.target, "loglikelihood": r.logprob,
                    "is_greedy": r.is_greedy, "acc": bool(r.is_greedy)}
        if r.n_truncated_tokens:
            row["n_truncated_tokens"] = r.n_truncated_tokens
        rows.append(row)
    return rows


def unconditional_loglikelihoods(engine: Engine, samples: list[Sample], delim: str) -> dict[str, list[float]]:
    """log P(delimiter + choice) after no context at all (the backend's prefix token), per
    choice: the baseline lm-eval's `acc_mutual_info` subtracts."""
    requests = [LoglikelihoodRequest("", delim + c) for s in samples for c in s.choices or ()]
    answers = iter(engine.loglikelihood(requests))
    return {s.id: [next(answers).logprob for _ in s.choices or ()] for s in samples}


def score_partial(engine: Engine, samples: list[Sample], continuations: dict[str, str], delim: str) -> list[MCScore]:
    """log P(continuation | prompt + choice) per choice, as lm-eval scores winogrande."""
    requests = [LoglikelihoodRequest(s.prompt + c, delim + continuations[s.id]) for s in samples for c in s.choices or ()]
    answers = iter(engine.loglikelihood(requests))
    scores = []
    for s in samples:
        got = [next(answers) for _ in s.choices or ()]
        scores.append(MCScore(tuple(a.logprob for a in got), tuple(a.n_tokens for a in got),
                              tuple(a.is_greedy for a in got), None, max((a.n_truncated_tokens for a in got), default=0)))
    return scores


def _generates(task: Task) -> bool:
    return task.output_type == "generate_until" or "acc_gen" in task.metrics


def _chance(task: Task) -> float | None:
    """Accuracy of a uniform guess (multiple choice), the floor a verdict is read against."""
    sizes = [len(s.choices) for s in task.samples if s.choices]
    return sum(1 / n for n in sizes) / len(sizes) if sizes and task.output_type == "multiple_choice" else None
