"""Decay over many sequential edits: apply edits one after another to the same weights and,
after the 1st, 10th, 100th … (the checkpoints), measure what the edits so far did to the model
(Gupta et al. 2024, "Model editing at scale leads to gradual and catastrophic forgetting").

At each checkpoint n:
* retention — efficacy (P(new) > P(old)) of all n edits made so far, and of the first edit
  alone, Wilson intervals over edits; paraphrase and neighbourhood the same way (`scores`);
* general accuracy — 0/1 per item of a general task (mmlu_sample, scored by the caller with
  the accuracy probe's log-likelihood scoring), its Wilson interval, and the paired
  difference against the unedited model on the same items (bootstrap over items);
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
from llmassay.metrics import paired_gap, proportion
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
    general: Callable[[], list[int]] | None = None  # 0/1 per general item, the model as it is now
    rag: Callable[[Sequence[Edit]], Rows] | None = None  # unedited + retrieval rows (taken once, unedited)


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


def checkpoint_entry(n: int, rows: Rows, baseline: dict[str, Any], correct: list[int] | None,
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
    if correct is not None:
        before = baseline["general_correct"]
        now, then = proportion(correct), proportion(before)
        entry["general"] = _metric(now)
        entry["general_gap"] = _metric(paired_gap([a - b for a, b in zip(correct, before)], now, then, seed))
        entry["general_correct"] = correct
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
            baseline["general_correct"] = hooks.general()
            baseline["general"] = _metric(proportion(baseline["general_correct"]))
        if hooks.rag is not None:
            baseline["rag_rows"] = hooks.rag(edits)
        baseline["seconds"] = round(time.perf_counter() - started, 3)
        log.doc["baseline"] = baseline
        log.save()
        say(f"unedited: scored {len(edits)} edits" + (f", general accuracy {baseline['general']['value']:.3f}"
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
        correct = hooks.general() if hooks.general is not None else None
        entry = checkpoint_entry(n, rows, baseline, correct, seed)
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
        g, d = entry["general"], entry["general_gap"]
        text += (f", general accuracy {g['value']:.3f} [{g['ci_low']:.3f}, {g['ci_high']:.3f}], "
                 f"vs unedited {d['value']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]")
    return text


def decay_plot(doc: dict[str, Any]) -> str:
    """Two panels against the number of edits (log scale): the edits' scores so far
    (retention, paraphrase, neighbourhood, with Wilson intervals), and general accuracy
    with its interval against the unedited model's (dashed line, shaded interval)."""
    from llmassay.report.plots import PALETTE, _figure, _svg

    points = doc["checkpoints"]
    xs = [p["n_edits"] for p in points]
    general = "general" in (points[0] if points else {})
    with _figure("decay", 8.4 if general else 4.4, 3.4) as fig:
        axes = fig.subplots(1, 2 if general else 1, squeeze=False)[0]
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
            base = doc["baseline"]["general"]
            ax.axhline(base["value"], color="#999999", linestyle="--", linewidth=1, label="unedited")
            ax.axhspan(base["ci_low"], base["ci_high"], color="#999999", alpha=0.15, linewidth=0)
            ms = [p["general"] for p in points]
            ax.errorbar(xs, [m["value"] for m in ms], yerr=_err(ms), fmt="s-", capsize=3, color=PALETTE[3],
                        label="edited")
            ax.set_xscale("log")
            ax.set_xlabel("edits made (sequential ROME)")
            ax.set_ylabel(f"accuracy, {doc['settings'].get('general_task', 'general task')} (95% Wilson CI)")
            ax.legend(frameon=False, fontsize=7)
        return _svg(fig)


def _err(ms: Sequence[dict[str, Any]]) -> list[list[float]]:
    return [[m["value"] - m["ci_low"] for m in ms], [m["ci_high"] - m["value"] for m in ms]]


__all__ = ["COLUMNS", "DECAY_JSON", "DECAY_SVG", "DecayHooks", "DecayLog", "checkpoint_entry", "decay_plot",
           "edit_hash", "line", "parse_checkpoints", "run_decay"]
