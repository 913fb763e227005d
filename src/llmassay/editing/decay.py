"""Decay over many sequential edits: apply edits one after another to the same weights and,
after the 1st, 10th, 100th … (the checkpoints), measure what the edits so far did to the model
(Gupta et al. 2024, "Model editing at scale leads to gradual and catastrophic forgetting").

At each checkpoint n:
* retention — efficacy (P(new) > P(old)) of all n edits made so far, and of the first edit
  alone, Wilson intervals over edits; paraphrase and neighbourhood the same way (`scores`);
* general accuracy — 0/1 per item of a general task (mmlu_sample, scored by the caller with
  the accuracy probe's log-likelihood scoring), its Wilson interval, and the paired
  difference against the unedited model on the same items (bootstrap over items);
* the same items' continuous measures, which move where 0/1 accuracy cannot (a model at
  chance): the log-likelihood of the gold option (nats) and its probability among the
  options (the softmax of the options' summed log-likelihoods, acc's own basis), each a mean
  with a bootstrap CI over items and the paired difference against the unedited model
  (bootstrap over items of the per-item differences: 0 exactly for an unchanged model);
* the table of the n edits side by side: unedited, edited weights, and (when given) the
  unedited model reading retrieval from a KB edited the same way (`editing.retrieval`).

Never lose finished work: `decay.json` is rewritten (atomically) after the unedited baseline
and after each checkpoint, and each checkpoint's weights are a folder
`checkpoints/<n>/` (`delta.safetensors` + `edits.json`: `--model-args edits=DIR` loads the model
after n edits). A rerun with the same settings resumes after the last checkpoint.
Nothing here knows a model: the caller passes what applies, scores and snapshots (`DecayHooks`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmassay.editing.edits import Edit
from llmassay.editing.scores import METRICS, columns_table, summarise
from llmassay.hashing import stable_hash
from llmassay.metrics import bootstrap_mean, paired_gap, proportion, softmax
from llmassay.types import LlmassayError, Metric

if TYPE_CHECKING:
    from llmassay.editing.rome import EditOutcome

DECAY_JSON = "decay.json"
DECAY_SVG = "decay.svg"
CHECKPOINTS = "checkpoints"
COLUMNS = ("unedited", "edited", "unedited + retrieval")

Rows = list[dict[str, Any]]


def parse_checkpoints(text: str) -> tuple[int, ...]:
    """"1,10,100" → (1, 10, 100): positive, increasing, one line naming a bad one."""
    out: list[int] = []
    for part in str(text).split(","):
        try:
            n = int(part.strip())
        except ValueError:
            raise LlmassayError(f"--decay '{text}': '{part.strip()}' is not a whole number of edits") from None
        if n < 1:
            raise LlmassayError(f"--decay '{text}': checkpoints count edits made, from 1 ({n} given)")
        out.append(n)
    if out != sorted(set(out)):
        raise LlmassayError(f"--decay '{text}': checkpoints must increase (1,10,100)")
    return tuple(out)


@dataclass
class DecayHooks:
    """What the loop asks of the model, so it runs on any model (and on fakes in tests)."""

    apply: Callable[[Edit], EditOutcome]  # one edit into the weights, in place
    score: Callable[[Sequence[Edit]], Rows]  # CounterFact rows of the model as it is now
    snapshot: Callable[[Path, int], None]  # write the weights' delta after n edits as an edits=DIR folder
    general: Callable[[], list[dict[str, Any]]] | None = None  # per general item (`general_item`), the model now
    rag: Callable[[Sequence[Edit]], Rows] | None = None  # unedited + retrieval rows (taken once, unedited)


GENERAL_MEASURES = ("gold_loglik", "gold_prob")  # continuous, per general item, beside 0/1 acc


def general_item(loglikelihoods: Sequence[float], target: int, correct: bool) -> dict[str, Any]:
    """One general item's outcome from its options' summed log-likelihoods (the accuracy
    probe's row): right/wrong, the gold option's log-likelihood, and its probability among
    the options (softmax of the log-likelihoods: acc's basis, renormalised over the options)."""
    return {"correct": int(bool(correct)), "gold_loglik": float(loglikelihoods[target]),
            "gold_prob": float(softmax(loglikelihoods)[target])}


def general_summary(items: Sequence[dict[str, Any]], before: dict[str, Any] | None = None,
                    seed: int = 0) -> dict[str, Any]:
    """The general task's figures for decay.json: accuracy (Wilson) and each continuous
    measure's mean (bootstrap over items), per-item values, and with `before` (the unedited
    summary) the paired differences on the same items (bootstrap over items)."""
    correct = [int(i["correct"]) for i in items]
    out: dict[str, Any] = {"general": _metric(proportion(correct)), "general_correct": correct}
    for m in GENERAL_MEASURES:
        values = [float(i[m]) for i in items]
        out[f"general_{m}"] = _metric(bootstrap_mean(values, seed))
        out[f"general_{m}_items"] = values
    if before is not None:
        then = before["general_correct"]
        if len(then) != len(correct):
            raise LlmassayError(f"general task: {len(correct)} items now, {len(then)} in the unedited baseline")
        out["general_gap"] = _metric(paired_gap([a - b for a, b in zip(correct, then)], proportion(correct),
                                                proportion(then), seed))
        for m in GENERAL_MEASURES:
            if f"general_{m}_items" in before:
                diffs = [a - b for a, b in zip(out[f"general_{m}_items"], before[f"general_{m}_items"])]
                out[f"general_{m}_gap"] = _metric(bootstrap_mean(diffs, seed))
    return out


def edit_hash(edit: Edit) -> str:
    return stable_hash([dataclasses.asdict(edit)])[:16]


class DecayLog:
    """decay.json: the settings, the unedited baseline, each finished checkpoint."""

    def __init__(self, directory: Path, doc: dict[str, Any]) -> None:
        self.directory, self.doc = directory, doc

    @classmethod
    def open(cls, directory: str | Path, settings: dict[str, Any]) -> DecayLog:
        """The run in `directory` to resume (its settings must be these), or a new one."""
        directory = Path(directory)
        path = directory / DECAY_JSON
        if not path.exists():
            return cls(directory, {"settings": settings, "baseline": None, "checkpoints": [], "outcomes": []})
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise LlmassayError(f"{path}: cannot resume from it ({exc}); use another --output-path") from None
        if doc.get("settings") != settings:
            changed = sorted(k for k in {**settings, **(doc.get("settings") or {})}
                             if (doc.get("settings") or {}).get(k) != settings.get(k))
            raise LlmassayError(f"{path}: a decay run with other settings ({', '.join(changed)}) is there; "
                                "use another --output-path or the same settings to resume it")
        return cls(directory, doc)

    @property
    def done(self) -> int:
        """Edits made at the last finished checkpoint (0 before any)."""
        return self.doc["checkpoints"][-1]["n_edits"] if self.doc["checkpoints"] else 0

    def checkpoint_dir(self, n: int) -> Path:
        return self.directory / CHECKPOINTS / str(n)

    def save(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / DECAY_JSON
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(path)


def _metric(m: Metric) -> dict[str, Any]:
    return m.as_dict()


def checkpoint_entry(n: int, rows: Rows, baseline: dict[str, Any], general: list[dict[str, Any]] | None,
                     seed: int = 0) -> dict[str, Any]:
    """What is measured after n edits (`rows`: the first n edits scored now)."""
    scores = summarise(rows)
    entry: dict[str, Any] = {
        "n_edits": n, "retention": _metric(scores["efficacy"]),
        "first_edit": {"efficacy": rows[0]["efficacy"], "margin": rows[0]["margin"]},
        **{m: _metric(scores[m]) for m in METRICS if m != "efficacy"},
    }
    columns = {"unedited": baseline["rows"][:n], "edited": rows}
    if baseline.get("rag_rows"):
        columns["unedited + retrieval"] = baseline["rag_rows"][:n]
    table = columns_table(columns, seed)
    entry["table"] = {"columns": {c: {m: _metric(v) for m, v in t.items()} for c, t in table["columns"].items()},
                      "gaps": {g: {m: _metric(v) for m, v in t.items()} for g, t in table["gaps"].items()}}
    if general is not None:
        entry.update(general_summary(general, baseline, seed))
    entry["rows"] = rows
    return entry


def run_decay(edits: Sequence[Edit], checkpoints: Sequence[int], hooks: DecayHooks, log: DecayLog,
              seed: int = 0, say: Callable[[str], None] = lambda _: None,
              after: Callable[[DecayLog], None] = lambda _: None) -> DecayLog:
    """Edit on from the log's last checkpoint through the last of `checkpoints`, measuring
    and saving at each (then `after(log)`: the plot so far); the weights must already hold
    the log's `done` edits."""
    if max(checkpoints) > len(edits):
        raise LlmassayError(f"--decay: the last checkpoint is {max(checkpoints)} edits, the file has {len(edits)}")
    done = log.done
    hashes = [edit_hash(e) for e in edits]
    if log.doc.get("edit_hashes", [])[:done] != hashes[:done]:
        raise LlmassayError(f"{log.directory / DECAY_JSON}: its first {done} edits are not this file's; "
                            "use another --output-path")
    if log.doc["baseline"] is None:
        started = time.perf_counter()
        baseline: dict[str, Any] = {"rows": hooks.score(edits)}
        if hooks.general is not None:
            baseline.update(general_summary(hooks.general(), None, seed))
        if hooks.rag is not None:
            baseline["rag_rows"] = hooks.rag(edits)
        baseline["seconds"] = round(time.perf_counter() - started, 3)
        log.doc["baseline"] = baseline
        log.save()
        say(f"unedited: scored {len(edits)} edits" + (f", general {_general_words(baseline)}"
                                                     if "general" in baseline else ""))
    elif len(log.doc["baseline"]["rows"]) < max(checkpoints):
        raise LlmassayError(f"{log.directory / DECAY_JSON}: its baseline scored {len(log.doc['baseline']['rows'])} "
                            f"edits, fewer than the last checkpoint; use another --output-path")
    baseline = log.doc["baseline"]
    todo = [c for c in checkpoints if c > done]
    skipped = [c for c in checkpoints if c <= done and c not in {e["n_edits"] for e in log.doc["checkpoints"]}]
    if skipped:
        say(f"checkpoints {skipped} are behind the resumed run ({done} edits made): not measured")
    outcomes = list(log.doc["outcomes"][:done])
    for n in todo:
        for i in range(len(outcomes), n):
            outcome = hooks.apply(edits[i])
            outcomes.append(dataclasses.asdict(outcome))
            say(f"edit {i + 1}/{todo[-1]} ({outcome.id}): NLL of the new object {outcome.nll_before} → "
                f"{outcome.nll_after} in {outcome.seconds:.1f} s")
        started = time.perf_counter()
        rows = hooks.score(edits[:n])
        general = hooks.general() if hooks.general is not None else None
        entry = checkpoint_entry(n, rows, baseline, general, seed)
        entry["edit_seconds"] = round(sum(o["seconds"] for o in outcomes[:n]), 3)
        entry["score_seconds"] = round(time.perf_counter() - started, 3)
        hooks.snapshot(log.checkpoint_dir(n), n)  # the weights first: the log never names a folder not written
        log.doc["checkpoints"].append(entry)
        log.doc["outcomes"] = outcomes
        log.doc["edit_hashes"] = hashes[:n]
        log.save()
        say(line(entry))
        after(log)
    after(log)
    return log


def line(entry: dict[str, Any]) -> str:
    """One checkpoint in words."""
    r = entry["retention"]
    text = (f"after {entry['n_edits']} edits: retention {r['value']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}] "
            f"(first edit {'holds' if entry['first_edit']['efficacy'] else 'lost'})")
    if "general" in entry:
        text += f", general {_general_words(entry)}"
    return text


def _general_words(entry: dict[str, Any]) -> str:
    """Accuracy and the continuous measures, each with its paired change where there is one."""
    def cell(key: str, f: str = ".3f") -> str:
        m = entry[key]
        text = f"{m['value']:{f}} [{m['ci_low']:{f}}, {m['ci_high']:{f}}]"
        gap = entry.get(f"{key}_gap")
        return text + (f" (vs unedited {gap['value']:+{f}} [{gap['ci_low']:+{f}}, {gap['ci_high']:+{f}}])"
                       if gap else "")

    parts = [f"accuracy {cell('general')}"]
    if "general_gold_loglik" in entry:
        parts += [f"gold log-likelihood {cell('general_gold_loglik')} nats",
                  f"P(gold | options) {cell('general_gold_prob')}"]
    return ", ".join(parts)


def decay_plot(doc: dict[str, Any]) -> str:
    """Panels against the number of edits (log scale): the edits' scores so far (retention,
    paraphrase, neighbourhood, with Wilson intervals); general accuracy and the gold option's
    probability among the options, each against the unedited model's (dashed line, shaded
    interval); and the paired change in the gold option's log-likelihood (zero line)."""
    from llmassay.report.plots import PALETTE, _figure, _svg

    points = doc["checkpoints"]
    xs = [p["n_edits"] for p in points]
    general = "general" in (points[0] if points else {})
    continuous = general and "general_gold_loglik_gap" in points[0]
    panels = 1 + general + continuous
    with _figure("decay", 4.2 * panels + 0.2, 3.4) as fig:
        axes = fig.subplots(1, panels, squeeze=False)[0]
        ax = axes[0]
        for i, (key, label) in enumerate((("retention", "efficacy of the edits so far (retention)"),
                                          ("paraphrase", "paraphrase"), ("neighbourhood", "neighbourhood"))):
            ms = [p[key] for p in points]
            ax.errorbar(xs, [m["value"] for m in ms], yerr=_err(ms), fmt="o-", capsize=3, color=PALETTE[i], label=label)
        ax.set_xscale("log")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("edits made (sequential ROME)")
        ax.set_ylabel("share of edits (95% Wilson CI)")
        ax.legend(frameon=False, fontsize=7)
        if general:
            ax = axes[1]
            task = doc["settings"].get("general_task") or "general task"
            shown = (("general", "accuracy", 3),) + ((("general_gold_prob", "P(gold | options)", 4),) if continuous else ())
            for key, label, colour in shown:
                base = doc["baseline"][key]
                ax.axhline(base["value"], color=PALETTE[colour], linestyle="--", linewidth=1, alpha=0.6)
                ax.axhspan(base["ci_low"], base["ci_high"], color=PALETTE[colour], alpha=0.12, linewidth=0)
                ms = [p[key] for p in points]
                ax.errorbar(xs, [m["value"] for m in ms], yerr=_err(ms), fmt="s-", capsize=3, color=PALETTE[colour],
                            label=f"{label} (dashed: unedited)")
            ax.set_xscale("log")
            ax.set_xlabel("edits made (sequential ROME)")
            ax.set_ylabel(f"{task}, mean over items (95% CI)")
            ax.legend(frameon=False, fontsize=7)
        if continuous:
            ax = axes[2]
            ax.axhline(0.0, color="#999999", linestyle="--", linewidth=1)
            ms = [p["general_gold_loglik_gap"] for p in points]
            ax.errorbar(xs, [m["value"] for m in ms], yerr=_err(ms), fmt="D-", capsize=3, color=PALETTE[5],
                        label="edited − unedited, paired over items")
            ax.set_xscale("log")
            ax.set_xlabel("edits made (sequential ROME)")
            ax.set_ylabel("Δ log-likelihood of the gold option (nats)")
            ax.legend(frameon=False, fontsize=7)
        return _svg(fig)


def _err(ms: Sequence[dict[str, Any]]) -> list[list[float]]:
    return [[m["value"] - m["ci_low"] for m in ms], [m["ci_high"] - m["value"] for m in ms]]


__all__ = ["COLUMNS", "DECAY_JSON", "DECAY_SVG", "GENERAL_MEASURES", "DecayHooks", "DecayLog", "checkpoint_entry",
           "decay_plot", "edit_hash", "general_item", "general_summary", "line", "parse_checkpoints", "run_decay"]
