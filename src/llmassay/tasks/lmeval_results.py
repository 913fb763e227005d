"""Results and samples files shaped as lm-eval 0.4.13 writes them, for its readers.

`<output>/<model_name_sanitized>/results_<date>.json` with lm-eval's keys
(`results[task]["acc,none"]`, `"acc_stderr,none"`, `alias`, `configs`, `versions` (task
versions), `n-shot`, `higher_is_better`, `n-samples`, `config`, `git_hash`, `date`,
`total_evaluation_time_seconds`) and `samples_<task>_<date>.jsonl` lines with `doc_id`,
`doc`, `target`, `arguments`, `resps`, `filtered_resps`, `filter`, `metrics` and the
three hashes. What lm-eval has no key for (confidence intervals, task content hashes,
probes, package versions) sits under `llmassay`. Stderr is lm-eval's: the sample standard
deviation over the square root of n.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import statistics
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from llmassay.tasks.corpus_metrics import CORPUS_METRICS
from llmassay.tasks.filters import TEXT_METRICS
from llmassay.tasks.groups import group_stderr
from llmassay.tasks.loader import Task
from llmassay.types import LlmassayError

LOWER_IS_BETTER = frozenset({"perplexity", "ter", "word_perplexity", "byte_perplexity", "bits_per_byte"})
AGGREGATES = (*CORPUS_METRICS, "perplexity", *TEXT_METRICS)  # not means of per-item scores: taken from the probe's metrics


def sanitize_model_name(name: str) -> str:
    """lm-eval's `sanitize_model_name`."""
    return re.sub(r"[\"<>:/|\\?*\[\]]+", "__", name)


def hash_string(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def lm_eval_key(metric: str) -> tuple[str, str]:
    """`acc` → (`acc`, `none`); `exact_match,strict-match` → (`exact_match`, `strict-match`)."""
    name, _, filt = metric.partition(",")
    return name, filt or "none"


def stderr(values: list[float]) -> float | str:
    return statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else "N/A"


def _json_safe(value: Any) -> Any:
    if callable(value):
        return f"!function {getattr(value, '__module__', '?').rsplit('.', 1)[-1]}.{getattr(value, '__name__', '?')}"
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def documents(results: dict[str, Any], rows: dict[str, list[dict[str, Any]]], tasks: dict[str, Task],
              groups: dict[str, dict[str, Any]] | None = None) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """The lm-eval results document and sample lines for one of our runs (its accuracy rows);
    `groups` (tasks/groups.py) become lm-eval's group entries."""
    out: dict[str, Any] = {"results": {}, "group_subtasks": {}, "configs": {}, "versions": {}, "n-shot": {},
                           "higher_is_better": {}, "n-samples": {}}
    samples: dict[str, list[dict[str, Any]]] = {}
    for name, task in tasks.items():
        task_rows = rows.get(name) or []
        if not task_rows:
            continue
        ours = results["results"].get(name, {})  # every probe's metrics, with their CIs
        entry: dict[str, Any] = {"alias": task.config.get("task_alias", name)}
        better: dict[str, bool] = {}
        for metric in task.metrics:
            base, filt = lm_eval_key(metric)
            values = [float(r[metric]) for r in task_rows if isinstance(r.get(metric), bool)]
            custom = task.scoring.custom if task.scoring is not None else {}
            aggregated = base in AGGREGATES or metric in task.aggregations or base in custom
            corpus = ours.get("accuracy", {}).get(metric) if aggregated else None
            if corpus is not None:  # f1, mcc, perplexity: over the corpus, not a mean of items
                entry[f"{base},{filt}"], entry[f"{base}_stderr,{filt}"] = corpus["value"], corpus["stderr"] or "N/A"
            elif values:
                entry[f"{base},{filt}"] = sum(values) / len(values)
                entry[f"{base}_stderr,{filt}"] = stderr(values)
            else:
                continue
            better[base] = base not in LOWER_IS_BETTER
        out["results"][name] = entry
        out["group_subtasks"][name] = []
        out["configs"][name] = _json_safe({**task.config, "num_fewshot": task.num_fewshot})
        out["versions"][name] = (task.config.get("metadata") or {}).get("version", "N/A")
        out["n-shot"][name] = task.num_fewshot
        out["higher_is_better"][name] = better
        out["n-samples"][name] = {"original": len(task.samples), "effective": len(task_rows)}
        samples[name] = _sample_lines(task, task_rows)
        out.setdefault("llmassay", {}).setdefault("results", {})[name] = ours
    for name, group in (groups or {}).items():
        entry = {"alias": name}
        for key, value in group["results"].items():  # lm-eval's stderr of a group: from its tasks'
            base, filt = lm_eval_key(key)
            have = [t for t in group["tasks"] if key in out["results"].get(t, {})]
            errs = [out["results"][t].get(f"{base}_stderr,{filt}") for t in have]
            sizes = [out["n-samples"][t]["effective"] for t in have]
            entry[key] = value
            entry[f"{base}_stderr,{filt}"] = ("N/A" if not errs or any(not isinstance(e, (int, float)) for e in errs)
                                              else group_stderr(errs, sizes, group["weight_by_size"].get(key, True)))
        out["results"][name] = entry
        out.setdefault("groups", {})[name] = out["results"][name]
        out["group_subtasks"][name] = list(group["tasks"])
        if "metrics" in group:  # our intervals, beside the tasks' CIs
            out.setdefault("llmassay", {}).setdefault("groups", {})[name] = group["metrics"]
    cfg = results.get("config", {})
    out["config"] = {"model": cfg.get("model"), "model_args": cfg.get("model_args"), "batch_size": cfg.get("batch_size"),
                     "limit": cfg.get("limit"), "random_seed": cfg.get("seed"), "fewshot_seed": 1234,
                     "gen_kwargs": None, "bootstrap_iters": 0}
    out["git_hash"] = (results.get("git_commit") or "")[:7] or None
    out["date"] = time.time()
    out["total_evaluation_time_seconds"] = str(results.get("wall_time_s"))
    out["model_name"] = cfg.get("model")
    out["model_name_sanitized"] = sanitize_model_name(str(cfg.get("model")))
    out.setdefault("llmassay", {}).update({
        "config_hash": results.get("config_hash"), "tasks": results.get("tasks"), "probes": results.get("probes"),
        "versions": results.get("versions"), "model": results.get("model"),
    })
    return out, samples


def _sample_lines(task: Task, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_id = {s.id: (i, s) for i, s in enumerate(task.samples)}
    lines = []
    for row in rows:
        doc_id, sample = by_id[row["id"]]
        if task.output_type == "multiple_choice":
            target = sample.target
            arguments = [[sample.prompt, c] for c in row.get("choices", [])]
            if sample.id in task.continuations:  # per-choice contexts (winogrande)
                cont = task.target_delimiter + task.continuations[sample.id]
                arguments = [[sample.prompt + c, cont] for c in sample.choices or ()]
            resps = [[[ll, g]] for ll, g in zip(row.get("loglikelihoods", []), row.get("is_greedy", []))]
            filtered = [r[0] for r in resps]
            metrics = {m: float(row[m]) for m in task.metrics if isinstance(row.get(m), bool)}
            lines.append(_line(doc_id, sample, target, arguments, resps, filtered, "none", metrics, row))
            continue
        if task.output_type == "loglikelihood_rolling":  # lm-eval: one request, the document's text
            metrics = {m: row[m] for m in task.metrics if m in row}
            lines.append(_line(doc_id, sample, sample.target, [[sample.target]], [[row["loglikelihood"]]],
                               [row["loglikelihood"]], "none", metrics, row))
            continue
        target = task.references(sample) if task.targets else sample.target
        arguments = [[sample.prompt, {**task.generation_kwargs}]]
        for metric in task.metrics:
            _, filt = lm_eval_key(metric)
            filtered = row.get(f"filtered_resps,{filt}", row.get("generation"))
            value = row.get(metric)
            metric_value = {metric.split(",")[0]: float(value)} if isinstance(value, bool) else {}
            resps = [row.get("generations") or [row.get("generation")]]  # lm-eval: the item's `repeats` answers
            lines.append(_line(doc_id, sample, target, arguments, resps, [filtered], filt,
                               metric_value, row))
    return lines


def _line(doc_id: int, sample: Any, target: Any, arguments: Any, resps: Any, filtered: Any, filt: str,
          metrics: dict[str, float], row: dict[str, Any]) -> dict[str, Any]:
    doc_text = json.dumps(sample.doc, indent=2, default=str, ensure_ascii=False)
    return {
        "doc_id": doc_id, "doc": sample.doc, "target": target, "arguments": arguments, "resps": resps,
        "filtered_resps": filtered, "filter": filt, "metrics": list(metrics), **metrics,
        "doc_hash": hash_string(doc_text), "prompt_hash": hash_string(sample.prompt),
        "target_hash": hash_string(str(target)), "llmassay": {"id": sample.id, **{k: row[k] for k in
                                                             ("n_truncated_tokens", "chat_template") if k in row}},
    }


def write(output_path: str | Path, results: dict[str, Any], rows: dict[str, list[dict[str, Any]]],
          tasks: dict[str, Task], groups: dict[str, dict[str, Any]] | None = None) -> Path:
    """Write the lm-eval-shaped files; returns the results file."""
    doc, samples = documents(results, rows, tasks, groups)
    folder = Path(output_path) / doc["model_name_sanitized"]
    stamp = datetime.now().isoformat().replace(":", "-")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"results_{stamp}.json"
        path.write_text(json.dumps(doc, indent=2, default=str, ensure_ascii=False) + "\n", encoding="utf-8")
        for name, lines in samples.items():
            text = "".join(json.dumps(line, default=str, ensure_ascii=False) + "\n" for line in lines)
            (folder / f"samples_{name}_{stamp}.jsonl").write_text(text, encoding="utf-8")
    except OSError as exc:
        raise LlmassayError(f"{folder}: cannot write lm-eval results ({exc.strerror})") from None
    return path
