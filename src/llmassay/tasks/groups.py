"""lm-eval `group:` scores: `aggregate_metric_list` over a group's leaf tasks.

lm-eval 0.4.13 (`api/group.py`) aggregates over every leaf task under the group, nested
groups and tags flattened: for each entry, each of its filters (`filter_list`, else every
filter a leaf task reports the metric under), the mean of the tasks' values weighted by
their sample counts (`weight_by_size: true`, the default) or not. Tasks without the metric
are left out. Only `aggregation: mean` exists in lm-eval; anything else is refused by name.

Every group score also carries a 95 % interval: value ± 1.96 × lm-eval's own group stderr
(the pooled stderr when weighted by size, the unweighted mean's otherwise), computed from
the member tasks' stderrs. Why a normal interval and not a bootstrap: the group score is a
fixed linear combination of independent task estimates over many items, so it is close to
normal, and its stderr is then exactly the one lm-eval's results file reports — one
uncertainty for both files. It needs no per-item values, so it covers corpus metrics (f1,
mcc, perplexity) whose task stderr is already a bootstrap. An interval of a metric whose
member intervals all lie in [0, 1] is clipped to [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from llmassay.metrics import Z95
from llmassay.types import LlmassayError, Metric


@dataclass(frozen=True)
class AggregateSpec:
    metric: str
    filters: tuple[str, ...] | None  # None: every filter the leaf tasks report the metric under
    weight_by_size: bool = True


@dataclass
class GroupSpec:
    name: str
    members: list[str]  # task, tag or group names
    aggregate: list[AggregateSpec] = field(default_factory=list)
    where: str = ""

    @classmethod
    def from_config(cls, config: dict[str, Any], where: str) -> GroupSpec:
        members = [t if isinstance(t, str) else (t.get("group") or t.get("task")) for t in config.get("task") or ()]
        specs = []
        for entry in config.get("aggregate_metric_list") or ():
            entry = {"metric": entry} if isinstance(entry, str) else entry
            if not isinstance(entry, dict) or not isinstance(entry.get("metric"), str):
                raise LlmassayError(f"{where}: group '{config.get('group')}': aggregate_metric_list entries need a 'metric'")
            if entry.get("aggregation", "mean") != "mean":
                raise LlmassayError(f"{where}: group '{config.get('group')}': aggregation "
                                    f"{entry['aggregation']!r} of '{entry['metric']}' is not supported (mean)")
            filters = entry.get("filter_list")
            filters = (filters,) if isinstance(filters, str) else (tuple(filters) if filters is not None else None)
            specs.append(AggregateSpec(entry["metric"], filters, bool(entry.get("weight_by_size", True))))
        return cls(str(config["group"]), [m for m in members if isinstance(m, str)], specs, where)


def weights_by_key(group: GroupSpec, keys: list[str]) -> dict[str, bool]:
    """`metric,filter` → whether its aggregate is weighted by size."""
    return {k: next((s.weight_by_size for s in group.aggregate if s.metric == k.split(",")[0]), True) for k in keys}


def group_stderr(stderrs: list[float], sizes: list[int], weight_by_size: bool) -> float:
    """lm-eval's `pooled_sample_stderr` (weighted by size) or `unweighted_mean_stderr`."""
    if not weight_by_size:
        return math.sqrt(sum(s * s for s in stderrs)) / len(stderrs)
    pooled = sum((n - 1) * s * s * n for n, s in zip(sizes, stderrs)) / (sum(sizes) - len(sizes))
    return math.sqrt(pooled / sum(sizes))


def aggregate_group(
    group: GroupSpec, leaves: list[str], task_metrics: dict[str, dict[str, float]], sizes: dict[str, int]
) -> dict[str, float]:
    """The group's `metric,filter` values from its leaf tasks' results (lm-eval's keys)."""
    out: dict[str, float] = {}
    for spec in group.aggregate:
        filters = spec.filters
        if filters is None:
            filters = tuple(sorted({k.split(",", 1)[1] for t in leaves for k in task_metrics.get(t, {})
                                    if k.split(",", 1)[0] == spec.metric and "," in k}))
        for filt in filters:
            key = f"{spec.metric},{filt}"
            have = [t for t in leaves if key in task_metrics.get(t, {})]
            if not have:
                continue
            weights = [sizes[t] if spec.weight_by_size else 1 for t in have]
            out[key] = sum(task_metrics[t][key] * w for t, w in zip(have, weights)) / sum(weights)
    return out


def group_metrics(
    group: GroupSpec, leaves: list[str], task_metrics: dict[str, dict[str, dict[str, Any]]], sizes: dict[str, int]
) -> dict[str, Metric]:
    """The group's `metric,filter` scores with their intervals, from the leaf tasks' metric
    dicts (`value`, `stderr`, `ci_low`, `ci_high`); a member without a stderr leaves the
    group's interval undefined (NaN), said by its `method`."""
    values = aggregate_group(group, leaves, {t: {k: m["value"] for k, m in ms.items()} for t, ms in task_metrics.items()},
                             sizes)
    weighted = weights_by_key(group, list(values))
    out: dict[str, Metric] = {}
    for key, value in values.items():
        have = [t for t in leaves if key in task_metrics.get(t, {})]
        members = [task_metrics[t][key] for t in have]
        n = sum(sizes[t] for t in have)
        errs = [m.get("stderr") for m in members]
        if any(not isinstance(e, (int, float)) or math.isnan(e) for e in errs):
            out[key] = Metric(value, math.nan, math.nan, n, None, "normal: a member task has no stderr")
            continue
        se = group_stderr([float(e) for e in errs], [sizes[t] for t in have], weighted[key])
        low, high = value - Z95 * se, value + Z95 * se
        if all(0.0 <= m.get("ci_low", -1.0) and m.get("ci_high", 2.0) <= 1.0 for m in members):
            low, high = max(0.0, low), min(1.0, high)
        method = "normal, lm-eval pooled stderr" if weighted[key] else "normal, unweighted-mean stderr"
        out[key] = Metric(value, low, high, n, se, method)
    return out


def leaf_tasks(name: str, expand: Callable[[str], list[str]]) -> list[str]:
    """A group's leaf task names, in order, each once."""
    return list(dict.fromkeys(expand(name)))


def _key(metric: str) -> str:
    return metric if "," in metric else f"{metric},none"


def group_results(index: Any, names: list[str], results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every group named in `names` (and the groups inside it) that has an
    `aggregate_metric_list`: its leaf tasks, its aggregated `metric,filter` values
    (`results`) and the same with their intervals (`metrics`, Metric dicts), from
    the accuracy probe's metrics in a run's results (sizes: each task's item count)."""
    out: dict[str, dict[str, Any]] = {}
    todo = list(names)
    while todo:
        name = todo.pop(0)
        spec = index.group_specs.get(name)
        if spec is None or name in out:
            continue
        todo.extend(spec.members)
        if not spec.aggregate:
            continue
        leaves = index.leaf_names(name)
        metrics: dict[str, dict[str, dict[str, Any]]] = {}
        sizes: dict[str, int] = {}
        for task in leaves:
            accuracy = results.get("results", {}).get(task, {}).get("accuracy", {})
            metrics[task] = {_key(m): v for m, v in accuracy.items() if isinstance(v, dict) and "value" in v}
            sizes[task] = max((v.get("n", 0) for v in accuracy.values() if isinstance(v, dict)), default=0)
        scores = group_metrics(spec, leaves, metrics, sizes)
        out[name] = {"tasks": leaves, "results": {k: m.value for k, m in scores.items()},
                     "metrics": {k: m.as_dict() for k, m in scores.items()},
                     "weight_by_size": weights_by_key(spec, list(scores))}
    return out
