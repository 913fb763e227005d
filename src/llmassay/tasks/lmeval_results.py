"""Results and samples files shaped as lm-eval 0.4.13 writes them, for its readers.

`<output>/<model_name_sanitized>/results_<date>.json` with lm-eval's keys
(`results[task]["acc,none"]`, `"acc_stderr,none"`, `alias`, `configs`, `versions` (task
versions), `n-shot`, `higher_is_better`, `n-samples`, `config`, `git_hash`, `date`,
`total_evaluation_time_seconds`) and `samples_<task>_<date>.jsonl` lines as its
EvaluationTracker writes them: `doc_id`, `doc`, `target` (a string), `arguments`
(`{"gen_args_0": {"arg_0": context, "arg_1": continuation}}`), `resps` and
`filtered_resps` (every leaf a string), `filter`, `metrics`, the three hashes, then each
metric's per-document value. What lm-eval has no key for (confidence intervals, task
content hashes, probes, package versions) sits under `llmassay`. Stderr is lm-eval's: the
sample standard deviation over the square root of n for means, "N/A" where lm-eval has no
stderr (weighted perplexities, bits per byte, a task's own aggregation function).
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
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
        entry: dict[str, Any] = {"name": name, "alias": task.config.get("task_alias", name), "sample_len": len(task_rows)}
        better: dict[str, bool] = {}
        for metric in task.metrics:
            base, filt = lm_eval_key(metric)
            # a mean of per-item values: right/wrong flags, or any number a task's process_results gives
            values = [float(r[metric]) for r in task_rows if isinstance(r.get(metric), numbers.Real)]
            custom = task.scoring.custom if task.scoring is not None else {}
            aggregated = base in AGGREGATES or metric in task.aggregations or base in custom
            corpus = ours.get("accuracy", {}).get(metric) if aggregated else None
            if corpus is not None:  # f1, mcc, perplexity: over the corpus, not a mean of items
                # lm-eval bootstraps a stderr only for its own corpus metrics; a ratio of sums
                # (word_perplexity, bits_per_byte) or a task's own aggregation gets "N/A"
                bootstrapped = base in AGGREGATES and metric not in task.aggregations and base not in custom
                entry[f"{base},{filt}"] = corpus["value"]
                bootstrapped = bootstrapped and len(task_rows) > 1 and corpus["stderr"] is not None
                entry[f"{base}_stderr,{filt}"] = corpus["stderr"] if bootstrapped else "N/A"
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
    """lm-eval's logged samples: one line per document, or per document and filter for
    generation, filter by filter (its evaluator's order)."""
    by_id = {s.id: (i, s) for i, s in enumerate(task.samples)}
    lines = []
    if task.output_type != "generate_until":
        for row in rows:
            doc_id, sample = by_id[row["id"]]
            lines.append(_line(doc_id, sample, *_requests(task, sample, row), "none", row))
        return lines
    filters = list(dict.fromkeys(lm_eval_key(m)[1] for m in task.metrics))
    for filt in filters:
        names = [m for m in task.metrics if lm_eval_key(m)[1] == filt]
        for row in rows:
            doc_id, sample = by_id[row["id"]]
            arguments = [(sample.prompt, generation_kwargs(task))]
            resps = [row.get("generations") or [row.get("generation")]]  # lm-eval: the item's `repeats` answers
            filtered = [row.get(f"filtered_resps,{filt}", row.get("generation"))]
            refs = task.references(sample)
            metrics = {lm_eval_key(m)[0]: [refs[0] if len(refs) == 1 else refs, row[m]]  # bleu …: (gold, answer)
                       if lm_eval_key(m)[0] in TEXT_METRICS else _item_value(row.get(m)) for m in names}
            metrics = {k: v for k, v in metrics.items() if v is not None}
            target = refs if task.targets else sample.target
            lines.append(_line(doc_id, sample, target, arguments, resps, filtered, metrics, filt, row))
    return lines


def _requests(task: Task, sample: Any, row: dict[str, Any]) -> tuple[Any, list[Any], list[Any], list[Any], dict[str, Any]]:
    """(target, arguments, resps, filtered_resps, metrics) of a log-likelihood document, as
    lm-eval's `construct_requests` and `process_results` make them."""
    if task.output_type == "loglikelihood":  # lm-eval: (context, target); (log-likelihood, is_greedy)
        resp = (row["loglikelihood"], bool(row["is_greedy"]))
        own = {"perplexity": row["loglikelihood"], "acc": int(bool(row["is_greedy"]))}
        return sample.target, [(sample.prompt, str(sample.target))], [[resp]], [resp], {
            m: own[m] for m in task.metrics if m in own}
    if task.output_type == "loglikelihood_rolling":  # lm-eval: one request, the document's text
        metrics = {m: row[m] for m in task.metrics if m in row}  # (log-likelihood, words or bytes)
        return sample.target, [(sample.target,)], [[row["loglikelihood"]]], [row["loglikelihood"]], metrics
    arguments = [(sample.prompt, task.target_delimiter + c) for c in sample.choices or ()]
    if sample.id in task.continuations:  # per-choice contexts (winogrande)
        cont = task.target_delimiter + task.continuations[sample.id]
        arguments = [(sample.prompt + c, cont) for c in sample.choices or ()]
    resps = [[(ll, g)] for ll, g in zip(row.get("loglikelihoods", []), row.get("is_greedy", []))]
    metrics = {m: _item_value(row[m]) for m in task.metrics if _item_value(row.get(m)) is not None}
    return sample.target, arguments, resps, [r[0] for r in resps], metrics


def generation_kwargs(task: Task) -> dict[str, Any]:
    """The second argument of a generation request: lm-eval's `generation_kwargs` as its
    TaskConfig completes them (`until` defaults to the few-shot delimiter)."""
    given = task.config.get("generation_kwargs")
    if not isinstance(given, dict):  # lm-eval's default_gen_kwargs
        return {"temperature": 0.0, "do_sample": False, "max_gen_toks": 256, "until": list(task.generation_kwargs["until"])}
    out = dict(given)
    if "temperature" in out:
        out["temperature"] = float(out["temperature"])
    out.setdefault("until", list(task.generation_kwargs["until"]))
    return out


def _item_value(value: Any) -> Any:
    """A per-document metric as lm-eval logs it: a right/wrong flag as 1.0/0.0, any other
    number (truthfulqa_mc2's probability mass) or pair as given; None if not a metric value."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, numbers.Real):
        return value
    if isinstance(value, (list, tuple)):
        return list(value)
    return None


def _sanitize(value: Any) -> Any:
    """lm-eval's `sanitize_list`: every leaf of the (nested) list as a string."""
    return [_sanitize(v) for v in value] if isinstance(value, (list, tuple)) else str(value)


def _line(doc_id: int, sample: Any, target: Any, arguments: list[tuple[Any, ...]], resps: list[Any],
          filtered: list[Any], metrics: dict[str, Any], filt: str, row: dict[str, Any]) -> dict[str, Any]:
    """One line of lm-eval's samples file as its EvaluationTracker writes it: arguments as
    `{"gen_args_i": {"arg_j": …}}`, responses as strings, the target as a string."""
    doc_text = json.dumps(sample.doc, indent=2, default=str, ensure_ascii=False)
    return {
        "doc_id": doc_id, "doc": sample.doc, "target": str(target),
        "arguments": {f"gen_args_{i}": {f"arg_{j}": a for j, a in enumerate(args)} for i, args in enumerate(arguments)},
        "resps": _sanitize(resps), "filtered_resps": _sanitize(filtered), "filter": filt, "metrics": list(metrics),
        "doc_hash": hash_string(doc_text), "prompt_hash": hash_string(str(arguments[0][0]) if arguments else ""),
        "target_hash": hash_string(str(target)), **metrics,
        "llmassay": {"id": sample.id, **{k: row[k] for k in ("n_truncated_tokens", "chat_template") if k in row}},
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
