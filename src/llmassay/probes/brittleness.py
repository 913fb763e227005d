"""Brittleness: how much the score moves when the prompt changes but the question doesn't.

Every item is asked in its canonical form and under each perturbation (see
`llmassay.perturbations`). Predictions are mapped back to canonical options, so a
variant that reorders options still counts as the same answer. Reported:
accuracy per variant, spread (FormatSpread), flip rate with McNemar's test, per-item
sensitivity, option-position bias, ProSA's PSS, POSIX, nondeterminism, and prompt
ensembling (majority vote, summed probabilities) as the mitigation.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from llmassay.metrics import bootstrap_mean, bootstrap_statistic, mcnemar_exact, proportion, softmax
from llmassay.perturbations import Variant, canonical, resolve_perturbations
from llmassay.probes._mc import SCORING_MODES, MCItem, score_multiple_choice
from llmassay.probes.base import Analysis, Preset, Probe, ProbeConfig, Row, SampleMetric, SummaryLine
from llmassay.probes.options import option as probe_option
from llmassay.types import LoglikelihoodRequest, Metric, Sample

if TYPE_CHECKING:
    from llmassay.engine.engine import Engine
    from llmassay.tasks.loader import Task

CANONICAL = "canonical"
BATCH_CHECK_ITEMS = 8


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
    variants = row.get("variants") or {}
    canon = variants[CANONICAL].get("pred")
    return {n: float(v.get("pred") != canon) for n, v in variants.items() if n != CANONICAL}


SPREAD_BRITTLE, SPREAD_WARN = 0.10, 0.05  # summary card: best − worst prompt, in accuracy


class BrittlenessProbe(Probe):
    name = "brittleness"
    description = "does the answer survive a change of wording, labels or option order? (spread, flips, PSS, POSIX)"
    challenge = "prompt brittleness"
    task_types = ("multiple_choice",)
    Options = BrittlenessOptions
    sample_metrics = {
        "acc": _variant_flags("correct"),
        "flip_rate": SampleMetric(_flips, "1 if the variant's answer differs from the canonical one", family=True),
        "sensitivity_mean": SampleMetric(
            lambda row: disagreement([v.get("pred") for v in row["variants"].values()]),
            "share of the item's variants disagreeing with its majority answer", binary=False,
        ),
    }
    presets = {
        "quick": Preset(("mmlu_sample",), limit=20),
        "full": Preset(("mmlu_sample",), limit=100),
    }

    # -- per sample ---------------------------------------------------------------------
    def evaluate(self, task: Task, samples: list[Sample], engine: Engine, opts: Any, cfg: ProbeConfig) -> list[Row]:
        mode = opts.scoring
        perturbations = resolve_perturbations(opts.perturbations)
        repeats = opts.repeats
        views: list[tuple[Sample, str, Variant]] = []
        for sample in samples:
            views.append((sample, CANONICAL, canonical(task, sample)))
            views += [(sample, p.name, p.apply(task, sample, cfg.seed)) for p in perturbations]
        items = [MCItem(v.prompt, v.choices) for _, _, v in views]
        scores = score_multiple_choice(engine, items, task.target_delimiter, cfg, generate=mode == "acc_gen")
        repeat_preds: dict[str, list[int | None]] = {}
        if repeats > 1:
            canon = [(s, v) for s, name, v in views if name == CANONICAL]
            for k in range(repeats):
                rep = score_multiple_choice(
                    engine, [MCItem(v.prompt, v.choices) for _, v in canon], task.target_delimiter, cfg, True, repeat=k
                )
                for (s, v), sc in zip(canon, rep):
                    slot = sc.pred_gen(v.choices)
                    repeat_preds.setdefault(s.id, []).append(None if slot is None else v.order[slot])
        rows: dict[str, dict[str, Any]] = {}
        for (sample, name, variant), score in zip(views, scores):
            row = rows.setdefault(
                sample.id, {"id": sample.id, "target": sample.target, "scoring": mode, "variants": {}}
            )
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
            row["variants"][name] = entry
            if sample.id in repeat_preds:
                row["repeat_preds"] = repeat_preds[sample.id]
        return list(rows.values())

    # -- corpus level -------------------------------------------------------------------
    def analyse(self, task: Task, rows: list[Row], opts: Any, cfg: ProbeConfig) -> Analysis:
        return Analysis(*self._analyse(rows, opts, cfg))

    def _analyse(self, rows: list[Row], opts: Any, cfg: ProbeConfig) -> tuple[dict[str, Metric], dict[str, Any]]:
        seed = cfg.seed
        configured = [p.name for p in resolve_perturbations(opts.perturbations)]
        names = [CANONICAL] + [n for n in configured if rows and n in rows[0]["variants"]]
        correct = np.array([[r["variants"][n]["correct"] for n in names] for r in rows], dtype=float)
        preds = [[r["variants"][n]["pred"] for n in names] for r in rows]
        metrics: dict[str, Metric] = {}
        details: dict[str, Any] = {"scoring": rows[0]["scoring"] if rows else None, "n_variants": len(names)}
        if not rows:
            return metrics, details

        for j, name in enumerate(names):
            metrics[f"acc[{name}]"] = proportion(correct[:, j])
        # FormatSpread's spread (best − worst variant). Its CI is the paired bootstrap of the
        # difference between those two variants, chosen on the full sample: the bootstrap of
        # a max − min over resamples is biased upwards and can exclude the estimate itself.
        accs = correct.mean(0)
        best, worst = int(accs.argmax()), int(accs.argmin())
        metrics["spread"] = bootstrap_statistic(correct, lambda m: float(m[:, best].mean() - m[:, worst].mean()), seed)
        details["spread_between"] = [names[best], names[worst]]

        table = []
        for j, name in enumerate(names):
            entry: dict[str, Any] = {"variant": name, "acc": float(correct[:, j].mean())}
            if j:
                flips = [p[j] != p[0] for p in preds]
                metrics[f"flip_rate[{name}]"] = proportion(flips)
                lost = int(((correct[:, 0] == 1) & (correct[:, j] == 0)).sum())
                gained = int(((correct[:, 0] == 0) & (correct[:, j] == 1)).sum())
                entry.update(flip_rate=float(np.mean(flips)), mcnemar_p=mcnemar_exact(lost, gained))
                unchanged = sum(r["variants"][name]["prompt"] == r["variants"][CANONICAL]["prompt"] for r in rows)
                entry["unchanged_prompts"] = unchanged
            table.append(entry)
        details["variants"] = table

        # Per-item sensitivity: share of variants that disagree with the item's majority answer.
        sensitivity = [disagreement(p) for p in preds]
        metrics["sensitivity_mean"] = bootstrap_mean(sensitivity, seed)
        details["sensitivity_quantiles"] = {
            q: float(np.quantile(sensitivity, q / 100)) for q in (10, 25, 50, 75, 90)
        }
        ranked = sorted(zip(sensitivity, (r["id"] for r in rows)), key=lambda x: (-x[0], x[1]))
        details["most_brittle_items"] = [{"id": i, "sensitivity": s} for s, i in ranked[:10]]

        # ProSA's PSS: mean over prompt pairs of |correct_i - correct_j|, averaged over items.
        pairs = list(itertools.combinations(range(len(names)), 2))
        if pairs:
            pss_items = [float(np.mean([abs(c[a] - c[b]) for a, b in pairs])) for c in correct]
            metrics["pss"] = bootstrap_mean(pss_items, seed)
        posix_items = [_posix(r, names) for r in rows]
        posix_items = [x for x in posix_items if x is not None]
        if posix_items:
            metrics["posix"] = bootstrap_mean(posix_items, seed)

        self._position_bias(rows, names, metrics, details, seed)
        self._ensembles(rows, names, correct, metrics, details, seed)
        repeats = [r["repeat_preds"] for r in rows if "repeat_preds" in r]
        if repeats:
            metrics["repeat_agreement"] = proportion([len(set(p)) == 1 for p in repeats])
        details["literature"] = (
            f"spread over {len(names)} prompts incl. canonical (FormatSpread reports a median of 7.5 accuracy "
            "points over 10 random formats for LLaMA-2, up to 76); PSS as ProSA (≈0.26 for Mistral-7B on "
            "CommonsenseQA); POSIX here uses the chosen option as the response y_j, normalised by its token count"
        )
        return metrics, details

    @staticmethod
    def _position_bias(
        rows: list[dict[str, Any]], names: list[str], metrics: dict[str, Metric], details: dict[str, Any], seed: int
    ) -> None:
        rotations = [n for n in names if n == CANONICAL or n.startswith("options_rot")]
        if len(rotations) < 2:
            return
        n_slots = len(rows[0]["variants"][CANONICAL]["order"])
        slots = [r["variants"][n]["pred_slot"] for r in rows for n in rotations]
        for k in range(n_slots):
            metrics[f"position_share[{k}]"] = proportion([s == k for s in slots])
        per_item = [float(np.mean([r["variants"][n]["correct"] for n in rotations])) for r in rows]
        metrics["acc_under_permutation"] = bootstrap_mean(per_item, seed)
        details["position_bias"] = {
            "rotations": rotations,
            "max_slot_share": max(float(np.mean([s == k for s in slots])) for k in range(n_slots)),
        }

    @staticmethod
    def _ensembles(
        rows: list[dict[str, Any]],
        names: list[str],
        correct: np.ndarray,
        metrics: dict[str, Metric],
        details: dict[str, Any],
        seed: int,
    ) -> None:
        probs = np.array([[_canonical_probs(r["variants"][n]) for n in names] for r in rows])  # items × variants × options
        targets = np.array([r["target"] for r in rows])
        majority = [_majority([r["variants"][n]["pred"] for n in names], probs[i].sum(0)) for i, r in enumerate(rows)]
        metrics["ensemble_majority_acc"] = proportion(np.array(majority) == targets)
        metrics["ensemble_prob_acc"] = proportion(probs.sum(1).argmax(1) == targets)
        rng = np.random.default_rng(seed)
        half = max(1, len(names) // 2)
        subset_accs = []
        for _ in range(200):
            chosen = rng.choice(len(names), size=half, replace=False)
            subset_accs.append(float((probs[:, chosen].sum(1).argmax(1) == targets).mean()))
        details["ensembling"] = {
            "single_template_acc_mean": float(correct.mean(0).mean()),
            "single_template_acc_sd": float(correct.mean(0).std(ddof=1)) if len(names) > 1 else 0.0,
            f"ensemble_of_{half}_acc_mean": float(np.mean(subset_accs)),
            f"ensemble_of_{half}_acc_sd": float(np.std(subset_accs, ddof=1)),
        }

    def summary(self, task: Task, analysis: Analysis, opts: Any) -> SummaryLine | None:
        spread = analysis.metrics.get("spread")
        if spread is None:
            return None
        flips = [m.value for name, m in analysis.metrics.items() if name.startswith("flip_rate[")]
        flip = f"; the answer changes under {max(flips):.0%} of items for the worst variant" if flips else ""
        if spread.ci_low >= SPREAD_BRITTLE:
            verdict, level = f"brittle: accuracy moves {spread.value:.0%} between prompt wordings{flip}", "bad"
        elif spread.value >= SPREAD_WARN:
            verdict, level = f"somewhat brittle: spread {spread.value:.0%} between wordings{flip}", "warn"
        else:
            verdict, level = f"stable: spread {spread.value:.0%} between wordings{flip}", "good"
        return self.line(task, analysis, "spread", verdict, level)

    # -- checks that need the engine ----------------------------------------------------
    def after_rows(self, task: Task, rows: list[Row], engine: Engine, opts: Any, cfg: ProbeConfig) -> dict[str, Any]:
        """Are log-likelihoods identical whether requests arrive one by one or eight at a time?
        Asked through the run's engine without its cache (a cached answer would make the
        check vacuous), so the requests are counted like any other."""
        canon = [r["variants"][CANONICAL] for r in rows[:BATCH_CHECK_ITEMS]]
        reqs = [LoglikelihoodRequest(v["prompt"], c) for v in canon for c in v["choices"]]
        if not reqs:
            return {}
        one = engine.without_cache(batch_size=1).loglikelihood(reqs)
        eight = engine.without_cache(batch_size=8).loglikelihood(reqs)
        delta = max(abs(a.logprob - b.logprob) for a, b in zip(one, eight))
        return {"batch_invariance": {"items": len(canon), "requests": len(reqs), "max_abs_delta": delta}}


def disagreement(preds: list[int | None]) -> float:
    """An item's sensitivity: the share of its prompts whose answer is not the most common one."""
    counts: dict[int | None, int] = {}
    for p in preds:
        counts[p] = counts.get(p, 0) + 1
    return 1.0 - max(counts.values()) / len(preds)


def _majority(preds: list[int | None], prob_sum: np.ndarray) -> int:
    """Most frequent answer; ties go to the tied option with the larger summed probability."""
    counts: dict[int, int] = {}
    for p in preds:
        if p is not None:
            counts[p] = counts.get(p, 0) + 1
    if not counts:
        return int(prob_sum.argmax())
    best = max(counts.values())
    return max((k for k, v in counts.items() if v == best), key=lambda k: prob_sum[k])


def _canonical_probs(entry: dict[str, Any]) -> np.ndarray:
    """Softmax over the variant's options, re-indexed to canonical option order."""
    slot_probs = softmax(entry["loglikelihoods"])
    out = np.zeros(len(slot_probs))
    for slot, option in enumerate(entry["order"]):
        out[option] = slot_probs[slot]
    return out


def _posix(row: dict[str, Any], names: list[str]) -> float | None:
    """POSIX with the chosen option as the response: mean over ordered prompt pairs (i, j)
    of |log P(y_j | x_i) − log P(y_j | x_j)| / len(y_j) in tokens."""
    variants = [row["variants"][n] for n in names]
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

