"""Before/after table of the mitigation lab: each probe's summary-card metric of run BEFORE against
one or more tuned runs, from `llmassay compare --json` (paired bootstrap CI and McNemar where the
probe gives per-item values; the two runs' own CIs where it does not).

    python scripts/before_after_table.py runs/before structured=runs/after-structured bias=runs/after-bias

A change is marked ↑ or ↓ (tax) only when its paired CI excludes 0 and, for a share, McNemar's
exact test rejects at 0.05."""
import json, subprocess, sys
from llmassay.report.matrix import direction, headline_metrics
from llmassay.report.rundir import load_run

before, recipes = sys.argv[1], sys.argv[2:]
def f(x):
    return f"{x:.2f}" if abs(x) < 100 else f"{x:.0f}"


base = load_run(before)
heads = headline_metrics([base])
tuned = {r.split("=")[0]: load_run(r.split("=")[1]) for r in recipes}


def own(run, key):
    """The run's own value and 95 % CI of a metric (from its results file)."""
    m = run.probe_metrics(key[0], key[1]).get(key[2])
    return f"{f(m['value'])} [{f(m['ci_low'])}, {f(m['ci_high'])}]" if m else "—"

cmp = {}
for r in recipes:
    name, path = r.split("=")
    out = f"/tmp/cmp-{name}.json"
    subprocess.run([sys.executable, "-m", "llmassay", "compare", before, path, "--json", out], capture_output=True)
    d = json.load(open(out))
    cmp[name] = {(p["task"], p["probe"], p["metric"]): p for p in d["paired"]}
    for u in d["unpaired"]:
        cmp[name].setdefault((u["task"], u["probe"], u["metric"]), {"unpaired": True, **u})
names = list(cmp)
print("| task · probe · headline metric | n | before [95 % CI] | " + " | ".join(f"{n}: after [95 % CI]; paired Δ [95 % CI]" for n in names) + " |")
print("| --- | --- | --- | " + " | ".join("---" for _ in names) + " |")
for key in heads:
    rows = [cmp[n].get(key) for n in names]
    if not any(rows):
        continue
    first = next(r for r in rows if r)
    if first.get("unpaired"):
        a = first["a"]
        cells = [f"{f(r['b']['value'])} [{f(r['b']['ci_low'])}, {f(r['b']['ci_high'])}] (unpaired)" if r else "—" for r in rows]
        print(f"| {key[0]} · {key[1]} · {key[2]} | {a['n']} | {f(a['value'])} [{f(a['ci_low'])}, {f(a['ci_high'])}] | " + " | ".join(cells) + " |")
        continue
    hib = direction(key[2])
    cells = []
    for name, r in zip(names, rows):
        if r is None:
            cells.append("—"); continue
        sig = r["ci_low"] > 0 or r["ci_high"] < 0
        mark = ""
        if sig and hib is not None:
            good = (r["delta"] > 0) == hib
            mark = " ↑" if good else " ↓ (tax)"
        pv = r.get("mcnemar_p")
        pp = f"; McNemar p {pv:.2g}" if pv is not None and (r["only_a"] or r["only_b"]) else ""
        if pv is not None and pv >= 0.05:
            mark = ""  # a paired share whose exact test does not reject: no tax or gain is claimed
        cells.append(f"{own(tuned[name], key)}; Δ {r['delta']:+.2f} [{r['ci_low']:+.2f}, {r['ci_high']:+.2f}]{pp}{mark}")
    print(f"| {key[0]} · {key[1]} · {key[2]} | {first['n']} | {own(base, key)} | " + " | ".join(cells) + " |")
