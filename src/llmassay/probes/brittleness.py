"""Brittleness: how much the score moves when the prompt changes but the question doesn't.

Every item is asked in its canonical form and under each perturbation (see
`llmassay.perturbations`). Predictions are mapped back to canonical options, so a
variant that reorders options still counts as the same answer. Reported:
accuracy per variant, spread (FormatSpread) against the spread of interchangeable
prompts, flip rate with McNemar's test, per-item sensitivity, option-position bias,
ProSA's PSS, POSIX, nondeterminism, and prompt ensembling (majority vote, summed
probabilities) as the mitigation.

Rules every aggregate follows: the unit of a CI is the item; controls (identity, reask,
scramble) are reported per variant but never enter an aggregate; an unparsed generated
answer is its own outcome (wrong, and never in agreement with anything); items may have
different variants (rotation k exists only for items with more than k options).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from llmassay.design import could_have_seen
from llmassay.metrics import (
    bootstrap_mean,
    mcnemar_exact,
    normalised_loglikelihoods,
    proportion,
    softmax,
    spread_with_null,
)
from llmassay.perturbations import PERTURBATIONS, Variant, canonical, resolve_perturbations
from llmassay.probes._mc import SCORING_MODES, MCItem, MCScore, score_multiple_choice
from llmassay.probes.base import Analysis, Preset, Probe, ProbeConfig, Row, SampleMetric, SummaryLine
from llmassay.probes._options import option as probe_option
from llmassay.types import LoglikelihoodRequest, Metric, Sample

if TYPE_CHECKING:
    from llmassay.engine.engine import Engine
    from llmassay.tasks.loader import Task

CANONICAL = "canonical"
BATCH_CHECK_ITEMS = 8
ROTATION_PREFIX = "options_rot"
ENSEMBLE_DRAWS = 200

View = tuple[Sample, str, Variant]


@dataclass(frozen=True)
class BrittlenessOptions:
    perturbations: str | None = probe_option(
        None, "perturbation names or families, comma-separated (default set: see `llmassay perturbations`)",
        check=lambda spec: resolve_perturbations(spec) and None,
    )
    scoring: str = probe_option("acc", "how each variant is answered: acc, acc_norm, acc_bytes or acc_gen", choices=SCORING_MODES)
    repeats: int = probe_option(1, "ask the canonical prompt K times by generation (nondeterminism at T > 0)", minimum=1)


def _variant_flags(field: str) -> SampleMetric:
    return SampleMetric(
        lambda row: {n: float(bool(v.get(field))) for n, v in (row.get("variants") or {}).items()},
        f"1 if the variant's answer is {field}", family=True,
    )


def _flips(row: Row) -> dict[str, float]:
    """1 where the variant's answer is not the canonical one (an unparsed answer agrees with nothing)."""
    variants = row.get("variants") or {}
    canon = variants[CANONICAL].get("pred")
    return {n: float(not agree(canon, v.get("pred"))) for n, v in variants.items() if n != CANONICAL}


# Summary card: brittle when the answer changes under ≥ 20 % of variants (lower CI end) or
# accuracy moves ≥ 10 points between wordings (lower CI end); somewhat brittle from 5 %.
FLIPS_BRITTLE, FLIPS_WARN, SPREAD_BRITTLE = 0.20, 0.05, 0.10


class BrittlenessProbe(Probe):
    name = "brittleness"
    description = "does the answer survive a change of wording, labels or option order? (spread, flips, PSS, POSIX)"
    challenge = "prompt brittleness"
    task_types = ("multiple_choice",)
    Options = BrittlenessOptions
    schema_version = 2  # 2: acc_gen reads the options each variant's prompt lists (an option's text names it)
    sample_metrics = {
        "acc": _variant_flags("correct"),
        "flip_rate": SampleMetric(_flips, "1 if the variant's answer differs from the canonical one", family=True),
        "flip_rate_mean": SampleMetric(
            lambda row: _changed_share(row), "share of the item's variants whose answer is not the canonical one",
            binary=False,
        ),
        "sensitivity_mean": SampleMetric(
            lambda row: disagreement(measured_preds(row)),
            "share of the item's variants disagreeing with its majority answer", binary=False,
        ),
    }
    presets = {
        "quick": Preset(("mmlu_sample",), limit=6),
        "full": Preset(("mmlu_sample",), limit=100),
    }

    # -- per sample ---------------------------------------------------------------------
    def evaluate(self, task: Task, samples: list[Sample], engine: Engine, opts: Any, cfg: ProbeConfig) -> list[Row]:
        mode = opts.scoring
        perturbations = resolve_perturbations(opts.perturbations)
        fresh = {p.name for p in perturbations if p.fresh}
        views: list[View] = []
        for sample in samples:
            views.append((sample, CANONICAL, canonical(task, sample)))
            applied = ((p.name, p.apply(task, sample, cfg.seed)) for p in perturbations)
            views += [(sample, name, v) for name, v in applied if v is not None]
        shared = [v for v in views if v[1] not in fresh]
        again = [v for v in views if v[1] in fresh]
        scores = dict(zip(map(_view_key, shared), _score(engine, shared, task, cfg, mode)))
        scores.update(zip(map(_view_key, again), _score(engine.without_cache(), again, task, cfg, mode, repeat=1)))
        repeat_preds = _repeat_preds(engine, views, task, cfg, opts.repeats)
        rows: dict[str, dict[str, Any]] = {}
        for sample, name, variant in views:
            row = rows.setdefault(
                sample.id, {"id": sample.id, "target": sample.target, "scoring": mode, "variants": {}}
            )
            row["variants"][name] = _entry(task, sample, variant, scores[(sample.id, name)], mode)
            if sample.id in repeat_preds:
                row["repeat_preds"] = repeat_preds[sample.id]
        return list(rows.values())

    # -- corpus level -------------------------------------------------------------------
    def analyse(self, task: Task, rows: list[Row], opts: Any, cfg: ProbeConfig) -> Analysis:
        return Analysis(*self._analyse(task, rows, opts, cfg))

    def _analyse(self, task: Task, rows: list[Row], opts: Any, cfg: ProbeConfig) -> tuple[dict[str, Metric], dict[str, Any]]:
        seed = cfg.seed
        configured = resolve_perturbations(opts.perturbations)
        present = {n for r in rows for n in r["variants"]}
        names = [CANONICAL] + [p.name for p in configured if p.name in present]
        controls = [p.name for p in configured if p.is_control and p.name in present]
        measured = [n for n in names if n not in controls]
        mode = rows[0]["scoring"] if rows else None
        metrics: dict[str, Metric] = {}
        details: dict[str, Any] = {"scoring": mode, "n_variants": len(measured), "controls": controls}
        if not rows:
            return metrics, details

        details["variants"] = self._per_variant(rows, names, controls, mode, metrics)
        self._spread(rows, measured, metrics, details, seed)
        own = [measured_preds(r, measured) for r in rows]  # each item's measured variants, ragged

        # The headline: how often the answer changes when only the wording does — each item's
        # share of its measured variants whose answer is not the canonical one, averaged.
        changed = [x for x in (_changed_share(r, measured) for r in rows) if x is not None]
        if changed:
            metrics["flip_rate_mean"] = bootstrap_mean(changed, seed)

        # Per-item sensitivity: share of variants that disagree with the item's majority answer.
        sensitivity = [disagreement(p) for p in own]
        metrics["sensitivity_mean"] = bootstrap_mean(sensitivity, seed)
        details["sensitivity_quantiles"] = {
            q: float(np.quantile(sensitivity, q / 100)) for q in (10, 25, 50, 75, 90)
        }
        ranked = sorted(zip(sensitivity, (r["id"] for r in rows)), key=lambda x: (-x[0], x[1]))
        details["most_brittle_items"] = [{"id": i, "sensitivity": s} for s, i in ranked[:10]]

        # ProSA's PSS: mean over prompt pairs of |correct_i - correct_j|, averaged over items.
        pss_items = [x for x in (_pss(r, measured) for r in rows) if x is not None]
        if pss_items:
            metrics["pss"] = bootstrap_mean(pss_items, seed)
        posix_items = [x for x in (_posix(r, measured) for r in rows) if x is not None]
        if posix_items:
            metrics["posix"] = bootstrap_mean(posix_items, seed)

        self._position_bias(rows, mode, metrics, details, seed)
        self._ensembles(rows, measured, mode, task.target_delimiter, metrics, details, seed)
        self._repeats(rows, metrics, seed)
        details["literature"] = (
            f"spread over {len(details['spread']['variants'])} prompts incl. canonical (FormatSpread reports a median "
            "of 7.5 accuracy points over 10 random formats for LLaMA-2, up to 76 — a raw max − min, biased upwards "
            "as ours is before the null is subtracted); PSS as ProSA (≈0.26 for Mistral-7B on CommonsenseQA); "
            "POSIX here uses the chosen option as the response y_j, normalised by its token count"
        )
        return metrics, details

    @staticmethod
    def _per_variant(
        rows: list[dict[str, Any]], names: list[str], controls: list[str], mode: str, metrics: dict[str, Metric]
    ) -> list[dict[str, Any]]:
        """Accuracy, flip rate vs canonical, McNemar and (generated answers) parse rate, each
        over the items that have the variant."""
        table = []
        for name in names:
            having = [r for r in rows if name in r["variants"]]
            correct = np.array([r["variants"][name]["correct"] for r in having], dtype=bool)
            metrics[f"acc[{name}]"] = proportion(correct)
            entry: dict[str, Any] = {"variant": name, "acc": float(correct.mean()), "n": len(having),
                                     "control": name in controls}
            if mode == "acc_gen":
                parsed = [r["variants"][name]["pred"] is not None for r in having]
                metrics[f"parse_rate[{name}]"] = proportion(parsed)
                entry["parse_rate"] = float(np.mean(parsed))
            if name != CANONICAL:
                canon = [r["variants"][CANONICAL] for r in having]
                flips = [not agree(c["pred"], r["variants"][name]["pred"]) for c, r in zip(canon, having)]
                metrics[f"flip_rate[{name}]"] = proportion(flips)
                base = np.array([c["correct"] for c in canon], dtype=bool)
                lost, gained = int((base & ~correct).sum()), int((~base & correct).sum())
                entry.update(flip_rate=float(np.mean(flips)), mcnemar_p=mcnemar_exact(lost, gained))
                entry["unchanged_prompts"] = sum(r["variants"][name]["prompt"] == c["prompt"] for c, r in zip(canon, having))
            table.append(entry)
        return table

    @staticmethod
    def _spread(
        rows: list[dict[str, Any]], measured: list[str], metrics: dict[str, Metric], details: dict[str, Any], seed: int
    ) -> None:
        """FormatSpread's best − worst, over the variants every item has (a paired statistic
        needs the same items in each column), against interchangeable variants' spread."""
        complete = [n for n in measured if all(n in r["variants"] for r in rows)]
        correct = np.array([[r["variants"][n]["correct"] for n in complete] for r in rows], dtype=float)
        result = spread_with_null(correct, complete, seed)
        metrics["spread"] = result.metric
        metrics["spread_null"] = result.null
        details["spread_between"] = [result.best, result.worst]
        details["spread"] = {
            "variants": complete,
            "left_out": [n for n in measured if n not in complete],
            "between": [result.best, result.worst],
            "null_mean": result.null.value,
            "excess": result.excess,
            "p_value": result.p_value,
        }

    @staticmethod
    def _position_bias(
        rows: list[dict[str, Any]], mode: str, metrics: dict[str, Metric], details: dict[str, Any], seed: int
    ) -> None:
        """Share of parsed picks per slot over each item's rotations (canonical included).
        The item is the unit: slot shares are a ratio of sums over items, bootstrapped over
        items; items with different option counts contribute their own slots."""
        rotations = [[n for n in r["variants"] if n == CANONICAL or n.startswith(ROTATION_PREFIX)] for r in rows]
        if max(len(x) for x in rotations) < 2:
            return
        n_slots = max(len(r["variants"][CANONICAL]["order"]) for r in rows)
        picks = np.zeros((len(rows), n_slots + 1))  # slot counts, then unparsed
        for i, (row, names) in enumerate(zip(rows, rotations)):
            for name in names:
                slot = row["variants"][name]["pred_slot"]
                picks[i, n_slots if slot is None else slot] += 1
        shares = _ratio_bootstrap(picks[:, :n_slots], picks[:, :n_slots].sum(1), seed)
        for k, metric in enumerate(shares):
            metrics[f"position_share[{k}]"] = metric
        if mode == "acc_gen":
            metrics["position_unparsed"] = _ratio_bootstrap(picks[:, n_slots:], picks.sum(1), seed)[0]
        per_item = [float(np.mean([r["variants"][n]["correct"] for n in names])) for r, names in zip(rows, rotations)]
        metrics["acc_under_permutation"] = bootstrap_mean(per_item, seed)
        details["position_bias"] = {
            "rotations": sorted({n for names in rotations for n in names}, key=_rotation_index),
            "max_slot_share": max(m.value for m in shares),
        }

    @staticmethod
    def _ensembles(
        rows: list[dict[str, Any]],
        measured: list[str],
        mode: str,
        delimiter: str,
        metrics: dict[str, Metric],
        details: dict[str, Any],
        seed: int,
    ) -> None:
        """Prompt ensembles scored as the variants are: majority vote of their predictions,
        and (log-likelihood scoring only) the argmax of summed option probabilities."""
        items = [[r["variants"][n] for n in measured if n in r["variants"]] for r in rows]
        probs = None if mode == "acc_gen" else [[_canonical_probs(e, mode, delimiter) for e in it] for it in items]
        targets = [r["target"] for r in rows]
        majority = [_majority([e["pred"] for e in it], None if probs is None else sum(probs[i]))
                    for i, it in enumerate(items)]
        metrics["ensemble_majority_acc"] = proportion([m == t for m, t in zip(majority, targets)])
        if probs is not None:
            metrics["ensemble_prob_acc"] = proportion([int(np.argmax(sum(p))) == t for p, t in zip(probs, targets)])
        vote = _subset_vote(items, probs)
        rng = np.random.default_rng(seed)
        subset_accs = []
        for _ in range(ENSEMBLE_DRAWS):
            picks = [rng.choice(len(it), size=max(1, len(it) // 2), replace=False) for it in items]
            subset_accs.append(float(np.mean([vote(i, p) == t for i, (p, t) in enumerate(zip(picks, targets))])))
        accs = [float(np.mean([r["variants"][n]["correct"] for r in rows if n in r["variants"]])) for n in measured]
        half = max(1, len(measured) // 2)
        details["ensembling"] = {
            "method": "majority vote" if probs is None else "summed probabilities",
            "single_template_acc_mean": float(np.mean(accs)),
            "single_template_acc_sd": float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
            f"ensemble_of_{half}_acc_mean": float(np.mean(subset_accs)),
            f"ensemble_of_{half}_acc_sd": float(np.std(subset_accs, ddof=1)),
        }

    def summary(self, task: Task, analysis: Analysis, opts: Any) -> SummaryLine | None:
        """Headline: the answer-change rate; the verdict also names the accuracy spread."""
        flips, spread = analysis.metrics.get("flip_rate_mean"), analysis.metrics.get("spread")
        if flips is None:
            return None
        moved = f"; accuracy spread {spread.value:.0%} [{spread.ci_low:.0%}, {spread.ci_high:.0%}]" if spread else ""
        said = f"the answer changes under {flips.value:.0%} of prompt variants{moved}"
        if flips.ci_low >= FLIPS_BRITTLE or (spread is not None and spread.ci_low >= SPREAD_BRITTLE):
            verdict, level = f"brittle: {said}", "bad"
        elif flips.value >= FLIPS_WARN:
            verdict, level = f"somewhat brittle: {said}", "warn"
        else:
            verdict, level = f"stable: {said}" + could_have_seen(flips.ci_low, flips.ci_high, "a flip rate"), "good"
        return self.line(task, analysis, "flip_rate_mean", verdict, level)

    @staticmethod
    def _repeats(rows: list[dict[str, Any]], metrics: dict[str, Metric], seed: int) -> None:
        """Repeats agree only when every one of them names the same option."""
        repeats = [r["repeat_preds"] for r in rows if "repeat_preds" in r]
        if repeats:
            metrics["repeat_agreement"] = proportion([disagreement(p) == 0.0 for p in repeats])
            metrics["repeat_parse_rate"] = bootstrap_mean([np.mean([x is not None for x in p]) for p in repeats], seed)

    # -- checks that need the engine ----------------------------------------------------
    def after_rows(self, task: Task, rows: list[Row], engine: Engine, opts: Any, cfg: ProbeConfig) -> dict[str, Any]:
        """Are log-likelihoods identical whether requests arrive one by one or eight at a time?
        Asked through the run's engine without its request cache, with the backend's KV cache
        cleared before each pass (either would make the check vacuous); the requests are
        counted like any other."""
        canon = [r["variants"][CANONICAL] for r in rows[:BATCH_CHECK_ITEMS]]
        reqs = [LoglikelihoodRequest(v["prompt"], c) for v in canon for c in v["choices"]]
        if not reqs:
            return {}
        engine.reset_backend()  # neither pass may start from the other's KV cache
        one = engine.without_cache(batch_size=1).loglikelihood(reqs)
        engine.reset_backend()
        eight = engine.without_cache(batch_size=8).loglikelihood(reqs)
        delta = max(abs(a.logprob - b.logprob) for a, b in zip(one, eight))
        return {"batch_invariance": {"items": len(canon), "requests": len(reqs), "max_abs_delta": delta}}


# -- evaluate helpers -------------------------------------------------------------------------
def _view_key(view: View) -> tuple[str, str]:
    return view[0].id, view[1]


def _score(
    engine: Engine, views: list[View], task: Task, cfg: ProbeConfig, mode: str, repeat: int = 0
) -> list[MCScore]:
    if not views:
        return []
    items = [MCItem(v.prompt, v.choices) for _, _, v in views]
    return score_multiple_choice(engine, items, task.target_delimiter, cfg, generate=mode == "acc_gen", repeat=repeat)


def _repeat_preds(
    engine: Engine, views: list[View], task: Task, cfg: ProbeConfig, repeats: int
) -> dict[str, list[int | None]]:
    """The canonical prompt's generated answer `repeats` times (distinct requests)."""
    if repeats <= 1:
        return {}
    canon = [v for v in views if v[1] == CANONICAL]
    out: dict[str, list[int | None]] = {}
    for k in range(repeats):
        for (sample, _, variant), score in zip(canon, _score(engine, canon, task, cfg, "acc_gen", repeat=k)):
            slot = score.pred_gen(variant.choices)
            out.setdefault(sample.id, []).append(None if slot is None else variant.order[slot])
    return out


def _entry(task: Task, sample: Sample, variant: Variant, score: MCScore, mode: str) -> dict[str, Any]:
    slot = score.prediction(mode, variant.choices)
    pred = None if slot is None else variant.order[slot]
    entry = {
        "prompt": variant.prompt,
        "choices": [task.target_delimiter + c for c in variant.choices],
        "order": list(variant.order),
        "loglikelihoods": list(score.loglikelihoods),
        "n_tokens": list(score.n_tokens),
        "pred_slot": slot,
        "pred": pred,
        "correct": pred == sample.target,
    }
    if score.generation is not None:
        entry["generation"] = score.generation
    if score.n_truncated_tokens:
        entry["n_truncated_tokens"] = score.n_truncated_tokens
    return entry


# -- analysis helpers -------------------------------------------------------------------------
def is_control(name: str) -> bool:
    perturbation = PERTURBATIONS.get(name)
    return perturbation is not None and perturbation.is_control


def measured_preds(row: dict[str, Any], names: Sequence[str] | None = None) -> list[int | None]:
    """The item's answers under the variants that enter aggregates (controls left out)."""
    variants = row.get("variants") or {}
    keep = names if names is not None else [n for n in variants if not is_control(n)]
    return [variants[n].get("pred") for n in keep if n in variants]


def agree(a: int | None, b: int | None) -> bool:
    """Two answers agree when both were understood and name the same option."""
    return a is not None and a == b


def _changed_share(row: Row, names: Sequence[str] | None = None) -> float | None:
    """The share of the item's measured variants (controls left out) whose answer is not
    the canonical answer; None for an item with no variant besides the canonical one."""
    variants = row.get("variants") or {}
    keep = names if names is not None else [n for n in variants if not is_control(n)]
    canon = variants[CANONICAL].get("pred")
    others = [variants[n].get("pred") for n in keep if n != CANONICAL and n in variants]
    return float(np.mean([not agree(canon, p) for p in others])) if others else None


def disagreement(preds: list[int | None]) -> float:
    """An item's sensitivity: the share of its prompts whose answer is not the most common
    parsed one. An unparsed answer agrees with nothing, so it always counts as disagreeing."""
    if not preds:
        return 0.0
    counts: dict[int, int] = {}
    for p in preds:
        if p is not None:
            counts[p] = counts.get(p, 0) + 1
    return 1.0 - max(counts.values(), default=0) / len(preds)


def _majority(preds: list[int | None], prob_sum: np.ndarray | None) -> int | None:
    """Most frequent parsed answer. Ties go to the tied option with the larger summed
    probability, or (generated answers, no probabilities) the one given by the earlier
    variant, canonical first. None when no variant gave an answer."""
    counts: dict[int, int] = {}
    for p in preds:
        if p is not None:
            counts[p] = counts.get(p, 0) + 1
    if not counts:
        return None if prob_sum is None else int(np.argmax(prob_sum))
    best = max(counts.values())
    tied = [p for p in dict.fromkeys(preds) if p is not None and counts[p] == best]
    return tied[0] if prob_sum is None else max(tied, key=lambda k: prob_sum[k])


def _subset_vote(
    items: list[list[dict[str, Any]]], probs: list[list[np.ndarray]] | None
) -> Callable[[int, np.ndarray], int | None]:
    """The ensemble of a subset of an item's variants, by the same rule as the full one."""
    if probs is None:
        return lambda i, picks: _majority([items[i][j]["pred"] for j in sorted(picks)], None)
    return lambda i, picks: int(np.argmax(sum(probs[i][j] for j in picks)))


def _canonical_probs(entry: dict[str, Any], mode: str, delimiter: str) -> np.ndarray:
    """Softmax over the variant's option scores (byte-normalised for acc_norm, as its
    prediction), re-indexed to canonical option order."""
    scores = entry["loglikelihoods"]
    if mode == "acc_norm":
        scores = normalised_loglikelihoods(scores, [c[len(delimiter):] for c in entry["choices"]])
    slot_probs = softmax(scores)
    out = np.zeros(len(slot_probs))
    for slot, option in enumerate(entry["order"]):
        out[option] = slot_probs[slot]
    return out


def _ratio_bootstrap(numerators: np.ndarray, denominators: np.ndarray, seed: int, n_boot: int = 2000) -> list[Metric]:
    """Σ numerator / Σ denominator per column, with a percentile bootstrap over items (rows);
    resamples whose denominator is 0 are skipped."""
    n = len(denominators)
    total = denominators.sum()
    if n == 0 or total == 0:
        return [Metric(float("nan"), float("nan"), float("nan"), n, None, "bootstrap ratio")] * numerators.shape[1]
    weights = np.random.default_rng(seed).multinomial(n, np.full(n, 1 / n), size=n_boot)
    dens = weights @ denominators
    ratios = (weights @ numerators)[dens > 0] / dens[dens > 0, None]
    out = []
    for k in range(numerators.shape[1]):
        low, high = np.percentile(ratios[:, k], [2.5, 97.5])
        value = float(numerators[:, k].sum() / total)
        out.append(Metric(value, float(low), float(high), n, float(np.std(ratios[:, k], ddof=1)), "bootstrap ratio"))
    return out


def _rotation_index(name: str) -> int:
    return 0 if name == CANONICAL else int(name[len(ROTATION_PREFIX):])


def _pss(row: dict[str, Any], names: list[str]) -> float | None:
    """ProSA's PSS for one item: mean |correct_i − correct_j| over pairs of its prompts."""
    correct = [float(row["variants"][n]["correct"]) for n in names if n in row["variants"]]
    pairs = list(itertools.combinations(correct, 2))
    return float(np.mean([abs(a - b) for a, b in pairs])) if pairs else None


def _posix(row: dict[str, Any], names: list[str]) -> float | None:
    """POSIX with the chosen option as the response: mean over ordered prompt pairs (i, j)
    of |log P(y_j | x_i) − log P(y_j | x_j)| / len(y_j) in tokens."""
    variants = [row["variants"][n] for n in names if n in row["variants"]]
    terms = []
    for j, vj in enumerate(variants):
        option = vj["order"][int(np.argmax(vj["loglikelihoods"]))]
        slot_j = vj["order"].index(option)
        own = vj["loglikelihoods"][slot_j]
        length = max(1, vj["n_tokens"][slot_j])
        for i, vi in enumerate(variants):
            if i != j:
                terms.append(abs(vi["loglikelihoods"][vi["order"].index(option)] - own) / length)
    return float(np.mean(terms)) if terms else None
