"""`llmassay plan`: how many items a comparison needs before it runs (the work is in `llmassay.design`)."""

from __future__ import annotations

import argparse
import json

from llmassay.terminal import stdout_console as _stdout
from llmassay.types import LlmassayError

PLAN_COMMANDS = ("plan",)

HELP = """Items needed to detect a difference between two models (or two settings), with the formula:
n = (z_{1-a/2} + z_{1-b})^2 * Var(d) / delta^2, Var(d) = sA^2 + sB^2 - 2 r sA sB on the same items
(paired; r read from two previous runs with --runs A B, or given with --correlation), sA^2 + sB^2
and n per model when the items differ (--unpaired). A proportion p has s^2 = p(1-p); a mean gives
--sd. K answers per item: s^2 = s_between^2 + s_within^2 / K (--samples K --within-var V; --runs
made with -P accuracy.samples=K give both).
Shared sources: times the design effect 1 + (m-1) ICC (--cluster-size m --icc ICC).
Miller (2024), "Adding Error Bars to Evals"."""


def add_plan_commands(sub: argparse._SubParsersAction) -> None:
    plan = sub.add_parser("plan", help="items a comparison needs for a given power (and what a run could detect)",
                          description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    plan.add_argument("--effect", type=float, required=True, help="the difference to detect, e.g. 0.03 (3 points)")
    plan.add_argument("--baseline", type=float, default=None,
                      help="the metric's value for model A (a proportion, e.g. 0.6); read from --runs when given")
    plan.add_argument("--sd", type=float, default=None, help="a mean's per-item standard deviation (latency, KL) "
                                                             "instead of a proportion")
    plan.add_argument("--runs", nargs=2, metavar=("RUN_A", "RUN_B"), default=None,
                      help="two previous runs on the same task: baseline, correlation and Var(d) read from their "
                           "per-item scores, and what log-probability scoring would cut")
    plan.add_argument("--task", default=None, help="--runs: the task (default: the runs' one common task)")
    plan.add_argument("--probe", default="accuracy", help="--runs: the probe whose rows hold the metric")
    plan.add_argument("--metric", default="acc", help="--runs: the per-item field, e.g. acc, exact_match")
    pairing = plan.add_mutually_exclusive_group()
    pairing.add_argument("--paired", dest="paired", action="store_true", default=True,
                         help="both models answer the same items (default)")
    pairing.add_argument("--unpaired", dest="paired", action="store_false", help="different items per model")
    plan.add_argument("--correlation", type=float, default=None,
                      help="paired: correlation of the two models' per-item scores (default 0 without --runs: "
                           "conservative for models that tend to get the same items right)")
    plan.add_argument("--power", type=float, default=0.8)
    plan.add_argument("--alpha", type=float, default=0.05, help="two-sided level")
    plan.add_argument("--samples", type=int, default=None,
                      help="K answers per item, averaged (default: the runs' K with --runs, else 1)")
    plan.add_argument("--within-var", type=float, default=None,
                      help="the within-item variance of one answer's score (0 under greedy decoding; with --runs "
                           "read from runs made with -P accuracy.samples=K, summed over the two models)")
    plan.add_argument("--cluster-size", type=float, default=1.0, help="items per shared source (passage, template)")
    plan.add_argument("--icc", type=float, default=0.0, help="intra-cluster correlation of the scores")
    plan.add_argument("--json", default=None, help="also write the plan as JSON to this file")


def run_plan_command(args: argparse.Namespace) -> None:
    from llmassay import design

    out = _stdout()
    lines: list[str] = []
    record: dict[str, object] = {"effect": args.effect, "power": args.power, "alpha": args.alpha,
                                 "paired": args.paired}
    scores = _scores_from_runs(args) if args.runs else None
    if scores is not None:
        base_a, base_b = design._mean(scores.a), design._mean(scores.b)
        r = design.correlation(scores.a, scores.b)
        var = design.difference_variance_of(scores.a, scores.b) if args.paired else \
            design._variance(scores.a) + design._variance(scores.b)
        lines.append(f"read from {args.runs[0]} and {args.runs[1]}: {scores.task} · {scores.metric} over {scores.n} "
                     f"common items: A {base_a:.3f}, B {base_b:.3f}, correlation r = {r:.2f}, Var(d) = {var:.4f}")
        record.update({"task": scores.task, "metric": scores.metric, "n_read": scores.n, "baseline_a": base_a,
                       "baseline_b": base_b, "correlation": r})
        between = var
        read = _within_from_runs(args, scores.task, scores.metric)
        if read is not None:  # the runs averaged K answers per item: split Var(d) into its two parts
            k_run, within = read
            between = max(var - within / k_run, 0.0)
            lines.append(f"the runs averaged K = {k_run} answers per item: within-item variance {within:.4f} "
                         f"(A + B), so Var(d) = between {between:.4f} + within / K")
            record.update({"samples_read": k_run, "within_var_read": within})
            if args.within_var is None:
                args.within_var = within
            if args.samples is None:
                args.samples = k_run
    elif args.sd is not None:
        if args.sd <= 0:
            raise LlmassayError(f"--sd {args.sd}: a positive standard deviation")
        s2 = args.sd ** 2
        between = design.difference_variance(s2, s2, (args.correlation or 0.0) if args.paired else None)
        lines.append(f"a mean with per-item sd {args.sd:g} for each model")
    else:
        if args.baseline is None:
            raise LlmassayError("plan: give --baseline (a proportion), --sd (a mean) or --runs A B")
        p_b = args.baseline + args.effect
        if not 0 <= p_b <= 1:
            raise LlmassayError(f"--baseline {args.baseline} + --effect {args.effect} leaves [0, 1]")
        between = design.paired_binary_variance(args.baseline, p_b, (args.correlation or 0.0) if args.paired else None)
        lines.append(f"proportions {args.baseline:.3f} → {p_b:.3f}"
                     + (f", correlation {args.correlation or 0.0:.2f}" if args.paired else ""))
    args.samples = 1 if args.samples is None else args.samples
    args.within_var = 0.0 if args.within_var is None else args.within_var
    deff = design.design_effect(args.cluster_size, args.icc)
    variance = design.resampled_variance(between, args.within_var, args.samples) * deff
    plan = design.items_needed(variance, args.effect, args.alpha, args.power, args.paired)
    lines.append(plan.formula)
    if deff != 1:
        lines.append(f"design effect 1 + ({args.cluster_size:g} − 1)·{args.icc:g} = {deff:.2f} is included")
    unit = "items (the same items for both models)" if args.paired else "items per model"
    lines.append(f"→ {plan.n:,} {unit} to detect a difference of {args.effect:g} with power {args.power:g} "
                 f"at α = {args.alpha:g} (two-sided)")
    record.update(plan.as_dict())
    if args.within_var > 0:
        for k in (1, 4, 16):
            v = design.resampled_variance(between, args.within_var, k) * deff
            lines.append(f"  with K = {k} answers per item: {design.items_needed(v, args.effect, args.alpha, args.power).n:,}")
    if scores is not None and scores.prob_a is not None and scores.prob_b is not None:
        pv = design.difference_variance_of(scores.prob_a, scores.prob_b) * deff
        with_probs = design.items_needed(pv, args.effect, args.alpha, args.power)
        lines.append(f"scored by P(correct) from the choices' log-likelihoods instead: Var(d) = {pv:.4f} → "
                     f"{with_probs.n:,} items (a difference in probability of the right answer, not in accuracy)")
        record["n_with_probabilities"] = with_probs.n
    for line in lines:
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(record, fh, indent=2)


def _within_from_runs(args: argparse.Namespace, task: str, metric: str) -> tuple[int, float] | None:
    """(K, within-item variance of d) from two runs made with K answers per item: each run's
    `details.samples` within_var for the metric, summed (the models sample independently)."""
    from llmassay.report.rundir import load_run

    found = []
    for path in args.runs:
        record = ((load_run(path).results.get("details") or {}).get(task) or {}).get(args.probe) or {}
        entry = (record.get("samples") or {}).get("metrics", {}).get(metric)
        if not isinstance(entry, dict) or "within_var" not in entry:
            return None
        found.append((int(record["samples"]["k"]), float(entry["within_var"])))
    if found[0][0] != found[1][0]:
        raise LlmassayError(f"--runs: the runs averaged different numbers of answers per item "
                            f"(samples={found[0][0]} and {found[1][0]}); plan from runs with the same K")
    return found[0][0], found[0][1] + found[1][1]


def _scores_from_runs(args: argparse.Namespace):  # noqa: ANN202 (design.PairedScores, imported lazily)
    from llmassay import design
    from llmassay.report.rundir import load_run

    run_a, run_b = (load_run(r) for r in args.runs)
    common = [t for t in run_a.results["results"] if t in run_b.results["results"]]
    task = args.task or (common[0] if len(common) == 1 else None)
    if task is None:
        raise LlmassayError(f"--runs: name the task with --task (common tasks: {', '.join(common) or 'none'})")
    if task not in common:
        raise LlmassayError(f"--task {task}: not in both runs (common tasks: {', '.join(common) or 'none'})")
    return design.paired_scores(run_a.rows(task, args.probe), run_b.rows(task, args.probe), task, args.metric)
