"""The strategies probe across runs: one panel per (model, task), read from results files,
as a markdown table and a cost–accuracy grid (PNG) for a README or a paper.

`llmassay tokens strategies RUN_DIR…` is the command; the per-run HTML report draws the
same plane for one run (`report/sections/strategies.py`, which owns the drawing).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmassay.runfiles import pick_results
from llmassay.types import LlmassayError

PROBE = "strategies"


@dataclass(frozen=True)
class Panel:
    """One model on one task: the probe's per-strategy entries (see StrategiesProbe.analyse)."""

    model: str
    task: str
    entries: list[dict[str, Any]]
    chat_template: str | None = None

    @property
    def n(self) -> int:
        return int(self.entries[0]["n"]) if self.entries else 0


def load_panels(paths: list[str]) -> list[Panel]:
    """Every (model, task) the strategies probe ran on in these run folders or results files."""
    panels: list[Panel] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            path, _ = pick_results(path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise LlmassayError(f"{given}: cannot read a results file ({exc})") from None
        model = doc.get("model", {}) if isinstance(doc, dict) else {}
        name = str(model.get("spec") or model.get("name") or "?")
        found = False
        for task, probes in (doc.get("details") or {}).items():
            details = (probes or {}).get(PROBE) or {}
            if details.get("strategies"):
                metrics = ((doc.get("results") or {}).get(task) or {}).get(PROBE) or {}
                entries = [_with_token_split(e, metrics) for e in details["strategies"]]
                panels.append(Panel(name, task, entries, details.get("chat_template_id")))
                found = True
        if not found:
            raise LlmassayError(f"{given}: no strategies-probe results in {path.name} (run with --probe strategies)")
    return panels


def _with_token_split(entry: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
    """Prompt and generated tokens per item: in the entry, or (results written before they
    were) in the run's `prompt_tokens[…]` / `gen_tokens[…]` metrics."""
    out = dict(entry)
    for key in ("prompt_tokens", "gen_tokens"):
        metric = metrics.get(f"{key}[{entry['strategy']}]")
        if key not in out and isinstance(metric, dict) and "value" in metric:
            out[key] = metric["value"]
    return out


def _ci(value: float, ci: list[float] | None, fmt: str) -> str:
    return f"{value:{fmt}} [{ci[0]:{fmt}}, {ci[1]:{fmt}}]" if ci else f"{value:{fmt}}"


def markdown_table(panels: list[Panel]) -> str:
    """The README table: accuracy and tokens with CIs, cost ratio, paired test, verdict (its
    words only: Δ and both p-values have their columns)."""
    lines = ["| model | task | n | strategy | accuracy (95 % CI) | tokens/item (95 % CI) | generated/item | cost "
             "| reasoning cut at cap | gained / lost | McNemar p | Holm p | verdict |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in panels:
        for e in p.entries:
            name = e["strategy"] + (f" (maj@{e['k']}; pass@{e['k']} {e['pass_at_k']:.2f})" if "k" in e else "")
            pairs = f"{e['gained']} / {e['lost']}" if "gained" in e else ""
            p_value = f"{e['mcnemar_p']:.2g} | {e['holm_p']:.2g}" if "holm_p" in e else " | "
            gen = f"{e['gen_tokens']:.0f}" if "gen_tokens" in e else ""
            capped = f"{e['capped_share']:.0%}" if "capped_share" in e else ""
            lines.append(f"| {p.model} | {p.task} | {p.n} | {name} | {_ci(e['acc'], e.get('acc_ci'), '.2f')} | "
                         f"{_ci(e['tokens'], e.get('tokens_ci'), '.0f')} | {gen} | {e['cost_ratio']:.1f}× | {capped} | {pairs} | "
                         f"{p_value} | {e.get('verdict', 'baseline').split(' (')[0]} |")
    return "\n".join(lines)


def projection(panels: list[Panel], items: int, decode_tps: float | None = None,
               prefill_tps: float | None = None) -> str:
    """What a run of `items` items per task would spend, from the measured mean tokens per
    item (every strategy and exemplar order summed): the arithmetic behind a full-size run.
    Prompt tokens are an upper bound on prefill work (a backend reusing a shared prefix
    evaluates fewer)."""
    lines = [f"| model | task | measured n | generated tokens / item | prompt tokens / item | "
             f"generated for {items} items | prompt for {items} items | hours at the given rates |",
             "|---|---|---|---|---|---|---|---|"]
    totals: dict[str, list[float]] = {}
    for p in panels:
        gen = sum(float(e.get("gen_tokens", 0.0)) for e in p.entries)
        prompt = sum(float(e.get("prompt_tokens", 0.0)) for e in p.entries)
        hours = _hours(gen * items, prompt * items, decode_tps, prefill_tps)
        lines.append(f"| {p.model} | {p.task} | {p.n} | {gen:,.0f} | {prompt:,.0f} | {gen * items:,.0f} | "
                     f"{prompt * items:,.0f} | {hours} |")
        t = totals.setdefault(p.model, [0.0, 0.0])
        t[0], t[1] = t[0] + gen * items, t[1] + prompt * items
    for model, (gen, prompt) in totals.items():
        lines.append(f"| {model} | all | | | | {gen:,.0f} | {prompt:,.0f} | "
                     f"{_hours(gen, prompt, decode_tps, prefill_tps)} |")
    return "\n".join(lines)


def _hours(gen: float, prompt: float, decode_tps: float | None, prefill_tps: float | None) -> str:
    if not decode_tps:
        return "—"
    return f"{(gen / decode_tps + (prompt / prefill_tps if prefill_tps else 0.0)) / 3600:.2f}"


def cost_accuracy_png(panels: list[Panel], path: Path) -> Path:
    """A grid of cost–accuracy planes: one row per model, one column per task."""
    from llmassay.report.plots import _figure
    from llmassay.report.sections.strategies import draw_cost_accuracy

    models = list(dict.fromkeys(p.model for p in panels))
    tasks = list(dict.fromkeys(p.task for p in panels))
    by = {(p.model, p.task): p for p in panels}
    with _figure("strategies-grid", 3.6 * len(tasks), 2.9 * len(models) + 0.6) as fig:
        axes = fig.subplots(len(models), len(tasks), squeeze=False, sharey=True)
        for i, model in enumerate(models):
            for j, task in enumerate(tasks):
                ax = axes[i][j]
                panel = by.get((model, task))
                if panel is None:
                    ax.set_axis_off()
                    continue
                draw_cost_accuracy(ax, [(e["strategy"], (e["acc"], *e["acc_ci"]), (e["tokens"], *e["tokens_ci"]))
                                        for e in panel.entries], legend=(i, j) == (0, 0))
                ax.set_title(f"{model.split('/')[-1]} · {task} (n = {panel.n})")
                ax.set_xlabel("")
                if j:
                    ax.set_ylabel("")
        fig.supxlabel("tokens spent per item, prompt + generated, every call summed (95 % bootstrap CI, log scale)")
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110, metadata={"Software": None})
    return path
