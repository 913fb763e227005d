"""The figures, each with a CI over items (the unit that was sampled).

- `hop1`, `hop2`: single-hop accuracy (Wilson); `both_hops`: both right.
- `two_hop[mode]`: two-hop accuracy per prompting mode (Wilson).
- `gap[mode]`: Press et al.'s compositionality gap — among the items whose two
  sub-questions were both answered right, the share whose two-hop question was missed
  (Wilson over that subset; its n is the subset's size, stated with it). With no such item
  it is not measurable and is left out, never reported as 0.
- `tokens[mode]`: generated tokens per item for the two-hop answer (bootstrap mean); the
  single hops are asked the same way in every mode, so they are not part of a mode's cost.
- `parsed[mode]`: reasoning modes only, the share whose generation said "So the final
  answer is:" (a miss otherwise).
- `two_hop_vs_direct[mode]`, `gap_vs_direct[mode]`, `tokens_vs_direct[mode]`: paired
  differences mode − direct over the same items (the gap's over the both-right subset;
  `metrics.paired_gap`, bootstrap over items).
"""

from __future__ import annotations

from typing import Any

from llmassay.metrics import bootstrap_mean, paired_gap, proportion
from llmassay.types import Metric

Row = dict[str, Any]
NOT_MEASURABLE = "not measurable (n = 0: no item has both hops right)"


def both_right(row: Row) -> bool:
    return bool(row["hop1"]["correct"] and row["hop2"]["correct"])


def missed(row: Row, mode: str) -> float:
    return 0.0 if row["modes"][mode]["correct"] else 1.0


def gap_metrics(rows: list[Row], modes: tuple[str, ...], seed: int = 0) -> dict[str, Metric]:
    """Every metric of the module docstring (a gap only where its subset is not empty)."""
    out: dict[str, Metric] = {
        "hop1": proportion([r["hop1"]["correct"] for r in rows]),
        "hop2": proportion([r["hop2"]["correct"] for r in rows]),
        "both_hops": proportion([both_right(r) for r in rows]),
    }
    subset = [r for r in rows if both_right(r)]
    for mode in modes:
        out[f"two_hop[{mode}]"] = proportion([r["modes"][mode]["correct"] for r in rows])
        if subset:
            out[f"gap[{mode}]"] = proportion([missed(r, mode) for r in subset])
        out[f"tokens[{mode}]"] = bootstrap_mean([r["modes"][mode]["tokens"] for r in rows], seed)
        if mode != "direct":
            out[f"parsed[{mode}]"] = proportion([r["modes"][mode]["parsed"] for r in rows])
    if "direct" in modes:
        for mode in (m for m in modes if m != "direct"):
            out[f"two_hop_vs_direct[{mode}]"] = paired_gap(
                [float(r["modes"][mode]["correct"]) - float(r["modes"]["direct"]["correct"]) for r in rows],
                out[f"two_hop[{mode}]"], out["two_hop[direct]"], seed)
            if subset:
                out[f"gap_vs_direct[{mode}]"] = paired_gap(
                    [missed(r, mode) - missed(r, "direct") for r in subset],
                    out[f"gap[{mode}]"], out["gap[direct]"], seed)
            out[f"tokens_vs_direct[{mode}]"] = bootstrap_mean(
                [r["modes"][mode]["tokens"] - r["modes"]["direct"]["tokens"] for r in rows], seed)
    return out


def tables(rows: list[Row], modes: tuple[str, ...], metrics: dict[str, Metric], seed: int = 0
           ) -> dict[str, list[dict[str, Any]]]:
    """Per mode (from `metrics`, the rows' `gap_metrics`), and per relation (single hops,
    then two-hop accuracy and gap per mode): the headline figures as dicts (value, CI, n)."""
    per_mode = []
    for mode in modes:
        entry: dict[str, Any] = {"mode": mode}
        for name in ("two_hop", "gap", "tokens", "parsed", "two_hop_vs_direct", "gap_vs_direct", "tokens_vs_direct"):
            m = metrics.get(f"{name}[{mode}]")
            if m is not None:
                entry[name] = m.as_dict()
        if f"gap[{mode}]" not in metrics:
            entry["gap"] = NOT_MEASURABLE
        per_mode.append(entry)
    per_relation = []
    for relation in sorted({r["relation"] for r in rows}):
        sub = gap_metrics([r for r in rows if r["relation"] == relation], modes, seed)
        entry = {"relation": relation, **{k: sub[k].as_dict() for k in ("hop1", "hop2", "both_hops")}}
        for mode in modes:
            entry[f"two_hop[{mode}]"] = sub[f"two_hop[{mode}]"].as_dict()
            entry[f"gap[{mode}]"] = sub[f"gap[{mode}]"].as_dict() if f"gap[{mode}]" in sub else NOT_MEASURABLE
        per_relation.append(entry)
    return {"modes": per_mode, "relations": per_relation}
