"""README tables of the bias and safety probes from results files.

    python scripts/safety_tables.py runs/*/results_*.json

Each file's safety probes (injection, stereotype, bbq, counterfactual, toxicity) become the
Markdown tables the README's "Bias and safety" section shows, labelled with the model and
the size that ran (so a table can never claim a size it did not have).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

MODELS = {"llamacpp/smollm2-135m": "SmolLM2-135M-Instruct", "llamacpp/gemma3-270m": "Gemma-3-270M"}


def ci(m: dict[str, Any] | None, signed: bool = False) -> str:
    if not m:
        return "—"
    f = "{:+.2f}" if signed else "{:.2f}"
    return f"{f.format(m['value'])} [{f.format(m['ci_low'])}, {f.format(m['ci_high'])}]"


def family(metrics: dict[str, Any], prefix: str) -> list[str]:
    return [k[len(prefix) + 1:-1] for k in metrics if k.startswith(prefix + "[") and k.endswith("]")]


def injection(model: str, m: dict[str, Any], results: dict[str, Any]) -> list[str]:
    opts = results["probes"]["injection"]["options"]
    hit = next((k.split("[")[0] for k in m if k.startswith("hit@")), None)
    n = m[f"asr[{family(m, 'asr')[0]}]"]["n"]
    out = [f"`injection` on {MODELS.get(model, model)}, {n} items, k = {opts.get('samples')}, T = "
           f"{results['config']['temperature']}, max_tokens = {opts.get('max_tokens')}:", "",
           "| mitigation | attack success | copy control | excess (paired) | refused | utility under attack | "
           f"utility, no attack |{f' {hit} | copy control {hit} |' if hit else ''}",
           "| --- | --- | --- | --- | --- | --- | --- |" + (" --- | --- |" if hit else "")]
    for mit in family(m, "asr"):
        cells = [ci(m[f"asr[{mit}]"]), ci(m[f"control[{mit}]"]), ci(m[f"excess[{mit}]"], True),
                 ci(m[f"refused[{mit}]"]), ci(m[f"utility_attack[{mit}]"]), ci(m[f"utility_clean[{mit}]"])]
        if hit:
            cells += [ci(m.get(f"{hit}[{mit}]")), ci(m.get(f"control_{hit}[{mit}]"))]
        out.append(f"| {mit} | " + " | ".join(cells) + " |")
    fams = "; ".join(f"{f} {ci(m[f'asr_family[{f}]'])} (n={m[f'asr_family[{f}]']['n']})" for f in family(m, "asr_family"))
    return out + ["", f"Attack success by family (no mitigation): {fams}."]


def stereotype_table(runs: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """One table, categories as rows, controlled and whole columns per model."""
    names = [MODELS.get(model, model) for model, _ in runs]
    sizes = ", ".join(f"{name} {m['stereotype_controlled']['n']} pairs" for name, (_, m) in zip(names, runs))
    out = [f"`stereotype` ({sizes}; 0.5 = no preference; per-category CIs are 95 % each, uncorrected):", "",
           "| category | " + " | ".join(f"{n}: controlled | {n}: whole" for n in names) + " |",
           "| --- |" + " --- | --- |" * len(runs)]
    rows = [("all pairs", "stereotype_controlled", "stereotype_whole", False)]
    rows += [(c, f"controlled[{c}]", f"whole[{c}]", False) for c in family(runs[0][1], "controlled")]
    rows += [("mean margin (nats)", "margin_controlled", "margin_whole", True)]
    for label, controlled, whole, signed in rows:
        out.append(f"| {label} | " + " | ".join(f"{ci(m.get(controlled), signed)} | {ci(m.get(whole), signed)}"
                                                for _, m in runs) + " |")
    return out


def bbq(model: str, m: dict[str, Any], results: dict[str, Any]) -> list[str]:
    summary = next((s for s in results["summary"] if s["probe"] == "bbq"), {})
    return [f"| {MODELS.get(model, model)} | {m['acc']['n']} | {ci(m['acc'])} | {ci(m.get('acc[ambig]'))} | "
            f"{ci(m.get('acc[disambig]'))} | {ci(m.get('s_dis'), True)} | {ci(m.get('s_amb'), True)} | "
            f"{summary.get('verdict', '')} |"]


def toxicity(model: str, m: dict[str, Any], results: dict[str, Any]) -> list[str]:
    hit = next(k.split("[")[0] for k in m if k.startswith("hit@"))
    size = f"{results['probes']['toxicity']['options']['samples']}, T = {results['config']['temperature']}"
    return [f"| {MODELS.get(model, model)} | {k} | {m[f'toxic_rate[{k}]']['n']} × {size} | {ci(m[f'toxic_rate[{k}]'])} | "
            f"{ci(m[f'{hit}[{k}]'])} | {ci(m[f'expected_max_toxicity[{k}]'])} | "
            f"{ci(m[f'toxic_rate_corrected[{k}]'])} |" for k in family(m, "toxic_rate")]


def counterfactual(model: str, m: dict[str, Any], results: dict[str, Any]) -> list[str]:
    d = results["details"]["counterfactual_sample"]["counterfactual"]
    summary = next((s for s in results["summary"] if s["probe"] == "counterfactual"), {})
    attributes = results["probes"]["counterfactual"]["options"]["attributes"]
    out = [f"`counterfactual` on {MODELS.get(model, model)}, attributes {', '.join(attributes)} (CIs at the "
           f"Bonferroni level {d['ci_level']:.4f}, {d['comparisons']} comparisons; flagged = exact sign-flip test "
           "over templates, Holm at family-wise 0.05):", "",
           "| gap | value [CI] | templates | exact p | flagged |", "| --- | --- | --- | --- | --- |"]
    pvalues = d.get("p_values", {})
    flagged = {f["comparison"] for f in d["flagged"]}
    gaps = {k: v for k, v in m.items() if k.startswith("gap_")}
    picks = {k: v for k, v in gaps.items() if k.startswith("gap_picks_first")}
    constant = len(picks) > 1 and all(v["value"] == 0 and k not in flagged for k, v in picks.items())
    for k, v in gaps.items():
        if not (constant and k in picks):
            p = f"{pvalues[k]:.2g}" if k in pvalues else "—"
            out.append(f"| `{k}` | {ci(v, True)} | {v['n']} | {p} | {'**yes**' if k in flagged else ''} |")
    if constant:
        out += ["", f"All {len(picks)} `gap_picks_first` are {ci(next(iter(picks.values())), True)}."]
    return out + ["", f"Flagged: {', '.join(sorted(flagged)) or 'none'}; verdict: {summary.get('verdict', '')}."]


HEADERS = {
    "bbq": ["| model | n | acc | acc ambiguous | acc disambiguated | s_DIS | s_AMB | verdict |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"],
    "toxicity": ["| model | kind | prompts × k, T | toxic rate | hit@k | expected max toxicity | corrected rate |",
                 "| --- | --- | --- | --- | --- | --- | --- |"],
}
WRITERS = {"injection": injection, "bbq": bbq, "counterfactual": counterfactual,
           "toxicity": toxicity}


def _model_order(path: str) -> int:
    """SmolLM2 before Gemma, as the README lists them."""
    spec = json.loads(Path(path).read_text())["model"]["spec"]
    return list(MODELS).index(spec) if spec in MODELS else len(MODELS)


def main(paths: list[str]) -> None:
    blocks: dict[str, list[str]] = {}
    stereotypes: list[tuple[str, dict[str, Any]]] = []
    for path in sorted(paths, key=_model_order):
        results = json.loads(Path(path).read_text())
        for task, probes in results["results"].items():
            for probe, metrics in probes.items():
                if probe == "stereotype":
                    stereotypes.append((results["model"]["spec"], metrics))
                elif probe in WRITERS:
                    lines = WRITERS[probe](results["model"]["spec"], metrics, results)
                    blocks.setdefault(probe, list(HEADERS.get(probe, []))).extend(lines + ([] if probe in HEADERS else [""]))
    if stereotypes:
        order = list(MODELS)
        stereotypes.sort(key=lambda run: order.index(run[0]) if run[0] in order else len(order))
        blocks["stereotype"] = stereotype_table(stereotypes)
    for probe, lines in blocks.items():
        print(f"<!-- {probe} -->")
        print("\n".join(lines))
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
