"""Markdown tables for the README from `llmassay tokens` outputs and strategies runs.

  python scripts/tokens_tables.py premium runs/tokens/premium_udhr.json
  python scripts/tokens_tables.py glitch runs/tokens/glitch_gemma-3-270m-q4_k_m.json
  python scripts/tokens_tables.py strategies RUN_DIR [RUN_DIR …]
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path


def _ci(m: dict | None, fmt: str = ".2f") -> str:
    if m is None:
        return "—"
    if m["ci_low"] is None or (isinstance(m["ci_low"], float) and math.isnan(m["ci_low"])):
        return f"{m['value']:{fmt}} (n=1)"
    return f"{m['value']:{fmt}} [{m['ci_low']:{fmt}}, {m['ci_high']:{fmt}}]"


def premium(path: str) -> None:
    data = json.loads(Path(path).read_text())
    tokenizers = list(dict.fromkeys(r["tokenizer"] for r in data["rows"]))
    langs = list(dict.fromkeys(r["language"] for r in data["rows"]))
    by = {(r["tokenizer"], r["language"]): r for r in data["rows"]}
    print("| lang | items | " + " | ".join(f"{t} premium | {t} tokens/1k chars" for t in tokenizers) + " |")
    print("|---|---|" + "---|---|" * len(tokenizers))
    for lang in langs:
        first = next(by[(t, lang)] for t in tokenizers if (t, lang) in by)
        cells = [f"{_ci(by[(t, lang)]['premium'])} | {by[(t, lang)]['tokens_per_1k_chars']:.0f}" if (t, lang) in by
                 else "— | —" for t in tokenizers]
        print(f"| {lang} | {first['n_items']} | " + " | ".join(cells) + " |")


def glitch(path: str) -> None:
    data = json.loads(Path(path).read_text())
    print(f"{data['model']}: {'tied' if data['tied'] else 'untied'} embeddings, indicator: {data['indicator']}; "
          f"reference: {data['reference']}; {data['n_candidates']} candidates of {data['n_eligible']} eligible tokens.")
    counts = {v: sum(f["verdict"] == v for f in data["checked"]) for v in ("strong", "weak", "not confirmed")}
    ctl = {v: sum(f["verdict"] == v for f in data["controls"]) for v in ("strong", "weak", "not confirmed")}
    print(f"Top {len(data['checked'])} candidates: {counts}; {len(data['controls'])} random controls: {ctl}. "
          f"Planted: {data['planted']}\n")
    print("| rank | id | token | indicator | max p(repeat) | verdict |\n|---|---|---|---|---|---|")
    for f in data["checked"]:
        token = f["token"].replace("|", "\\|")
        print(f"| {f['rank']} | {f['id']} | `{token}` | {f['score']:.3f} | {f['max_prob']:.2g} | {f['verdict']} |")


def strategies(*dirs: str) -> None:
    """The same table as `llmassay tokens strategies RUN…` prints."""
    from llmassay.tokens.strategy_runs import load_panels, markdown_table

    print(markdown_table(load_panels(list(dirs))))


if __name__ == "__main__":
    {"premium": premium, "glitch": glitch, "strategies": strategies}[sys.argv[1]](*sys.argv[2:])
