"""`llmassay compare A B`: metric deltas between two runs, paired on common sample ids.

Two models answering the same items are paired data: the delta's CI is a paired
bootstrap over items and McNemar's exact test uses only the items on which they differ,
both far tighter than comparing two independent intervals. When both runs' rows name the
source each item comes from (`-P accuracy.cluster=FIELD` writes it as `cluster`), items of
one source move together: the CI is then a cluster bootstrap (whole clusters resampled) and
the MDE uses the cluster-robust variance, and the comparison says so. Runs whose tasks hold
different items (content hashes differ) are refused unless forced: a delta between
different questions means nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from llmassay.design import minimum_detectable_effect
from llmassay.metrics import bootstrap_statistic, cluster_bootstrap_mean, cluster_robust_variance, mcnemar_exact
from llmassay.terminal import fitted_tables
from llmassay.report.rundir import RunData, load_run
from llmassay.report.section import Section, hook
from llmassay.types import LlmassayError, bound_text


@dataclass(frozen=True)
class PairedDelta:
    """A metric recomputed on the samples both runs answered, B − A with a paired CI."""

    task: str
    probe: str
    metric: str
    n: int
    a: float
    b: float
    delta: float
    ci_low: float
    ci_high: float
    only_a: int | None = None  # binary metrics: items where only A scores 1
    only_b: int | None = None
    mcnemar_p: float | None = None
    # the smallest |B − A| these n paired items detect with 80 % power at 5 % (design.py)
    mde: float | None = None
    clusters: int | None = None  # items shared sources: the CI is a cluster bootstrap over this many

    @property
    def method(self) -> str:
        return "paired bootstrap over items" if self.clusters is None else \
            f"paired cluster bootstrap over {self.clusters} clusters"

    @property
    def detected(self) -> bool:
        return self.ci_low > 0 or self.ci_high < 0

    def power_note(self) -> str | None:
        """For a difference not detected: what this run could and could not have seen."""
        what = f"{self.task} · {self.probe} · {self.metric}"
        if self.detected:
            return None
        if self.n < 2:
            return f"{what}: no difference detected, and with n = {self.n} no difference could have been"
        if self.mde is None:
            return None
        if self.mde <= 1e-12:  # every pair scored alike: no spread to size an effect by
            return (f"{what}: no difference detected; the {self.n} paired items all score alike, so the data "
                    "cannot say how large a difference this run could have seen")
        among = "" if self.clusters is None else f" in {self.clusters} clusters"
        return (f"{what}: no difference detected; with n = {self.n} paired items{among} this run could have seen a "
                f"difference of {self.mde:.3g} (80 % power), not a smaller one")


@dataclass(frozen=True)
class MetricDelta:
    """A corpus-level metric both runs report but no per-sample pairing exists for."""

    task: str
    probe: str
    metric: str
    a: dict[str, Any]
    b: dict[str, Any]
    delta: float


@dataclass
class Comparison:
    a: str
    b: str
    paired: list[PairedDelta] = field(default_factory=list)
    unpaired: list[MetricDelta] = field(default_factory=list)
    only_a: list[str] = field(default_factory=list)  # "task / probe / metric" present only in A
    only_b: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # how a delta was computed where it differs from the default
    review: list[Section] = field(default_factory=list)  # human labels next to either run, and their agreement

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _mean_difference(matrix: np.ndarray) -> float:
    return float(matrix[:, 1].mean() - matrix[:, 0].mean())


def paired_delta(task: str, probe: str, metric: str, a: list[float], b: list[float], seed: int = 0,
                 clusters: Sequence[object] | None = None) -> PairedDelta:
    """B − A over paired items; with `clusters` (one source key per item) the CI resamples
    whole clusters and the MDE reads the cluster-robust variance of the mean difference."""
    matrix = np.column_stack([np.asarray(a, dtype=float), np.asarray(b, dtype=float)])
    diffs = matrix[:, 1] - matrix[:, 0]
    groups = None
    if clusters is not None:
        ci = cluster_bootstrap_mean(diffs, clusters, seed, n_boot=1000)
        var, groups = cluster_robust_variance(diffs, clusters)
        mde = minimum_detectable_effect(var * len(diffs), len(diffs)) if groups > 1 else None
    else:
        ci = bootstrap_statistic(matrix, _mean_difference, seed)
        mde = minimum_detectable_effect(float(diffs.var(ddof=1)), len(diffs)) if len(diffs) > 1 else None
    only_a = only_b = p = None
    if np.isin(matrix, (0.0, 1.0)).all():
        only_a = int(((matrix[:, 0] == 1) & (matrix[:, 1] == 0)).sum())
        only_b = int(((matrix[:, 0] == 0) & (matrix[:, 1] == 1)).sum())
        p = mcnemar_exact(only_a, only_b)
    return PairedDelta(task, probe, metric, len(matrix), float(matrix[:, 0].mean()), float(matrix[:, 1].mean()),
                       ci.value, *ci.interval(), only_a, only_b, p, mde, groups)


def check_tasks(a: RunData, b: RunData, force: bool) -> tuple[list[str], list[str]]:
    """Common task names, and those holding different items: an error unless forced."""
    common = [t for t in a.results["results"] if t in b.results["results"]]
    if not common:
        raise LlmassayError(f"{a.root} and {b.root}: no task in common, nothing to compare")
    hashes_a, hashes_b = a.task_hashes(), b.task_hashes()
    differing = [t for t in common if hashes_a.get(t) and hashes_b.get(t) and hashes_a[t] != hashes_b[t]]
    if differing and not force:
        t = differing[0]
        raise LlmassayError(
            f"task '{t}' differs between the runs (content hash {str(hashes_a.get(t))[:12]} vs "
            f"{str(hashes_b.get(t))[:12]}): deltas over different items mislead; pass --force to compare anyway"
        )
    return common, differing


def probe_options(run: RunData, probe: str) -> dict[str, Any] | None:
    """The options a run's probe ran with (checked, defaults filled), or None when the
    results file predates their recording."""
    record = (run.results.get("probes") or {}).get(probe)
    return record.get("options") if isinstance(record, dict) and isinstance(record.get("options"), dict) else None


def check_options(a: RunData, b: RunData, task: str, probe: str, force: bool) -> list[str]:
    """A probe's metrics mean what its options make them (which variants, which scoring,
    which modes): runs whose options differ are not paired metric by metric unless forced."""
    opts_a, opts_b = probe_options(a, probe), probe_options(b, probe)
    if opts_a is None or opts_b is None:
        return [f"{task} / {probe}: a results file does not record the probe's options; compared as if equal"]
    differing = sorted(k for k in set(opts_a) | set(opts_b) if opts_a.get(k) != opts_b.get(k))
    if not differing:
        return []
    detail = "; ".join(f"-P {probe}.{k}: {opts_a.get(k)!r} vs {opts_b.get(k)!r}" for k in differing)
    if not force:
        raise LlmassayError(f"{task} / {probe}: the runs used different options ({detail}): their metrics measure "
                            "different things; pass --force to compare anyway")
    return [f"{task} / {probe}: options differ ({detail}), compared anyway (--force)"]


def build_warnings(results_a: dict[str, Any], results_b: dict[str, Any]) -> list[str]:
    """llama.cpp figures repeat exactly only on one build and CPU kernel set: between builds
    log-likelihoods differ by rounding and a few answers flip (README, "Reproducibility"),
    so a delta between runs on different builds holds that noise too."""
    env_a, env_b = results_a.get("environment") or {}, results_b.get("environment") or {}
    info_a, info_b = env_a.get("llama_cpp_system_info"), env_b.get("llama_cpp_system_info")
    if not (info_a and info_b) or info_a == info_b:
        return []
    va = (results_a.get("versions") or {}).get("llama_cpp_python", "?")
    vb = (results_b.get("versions") or {}).get("llama_cpp_python", "?")
    return [f"the runs used different llama.cpp builds (llama-cpp-python {va} vs {vb}; system_info "
            f"{info_a!r} vs {info_b!r}; CPU {env_a.get('cpu_model', '?')} vs {env_b.get('cpu_model', '?')}): "
            "per-sample results repeat only within one build, so part of any delta is build noise"]


def compare_runs(path_a: str | Path, path_b: str | Path, force: bool = False, seed: int = 0) -> Comparison:
    a, b = load_run(path_a), load_run(path_b)
    out = Comparison(a.label, b.label)
    common, differing = check_tasks(a, b, force)
    hashes = (a.task_hashes(), b.task_hashes())
    out.warnings += [f"{t}: content hashes differ, compared anyway (--force)" for t in differing
                     if hashes[0].get(t) and hashes[1].get(t)]
    out.warnings += [f"{t}: a results file records no content hash for this task, so its items cannot be checked"
                     for t in common if not (hashes[0].get(t) and hashes[1].get(t))]
    out.warnings += [f"{t}: no samples file in {r.root}; only reported values compared"
                     for r in (a, b) for t in r.missing_samples if t in common]
    out.warnings += build_warnings(a.results, b.results)
    for run, into in ((a, out.only_a), (b, out.only_b)):
        other = b if run is a else a
        for m in run.metrics():
            if m.name not in other.probe_metrics(m.task, m.probe):
                into.append(f"{m.task} / {m.probe} / {m.name}")
    for task in common:
        for probe, metrics_a in a.results["results"][task].items():
            metrics_b = b.probe_metrics(task, probe)
            if metrics_b:
                out.warnings += check_options(a, b, task, probe, force)
                _compare_probe(out, a, b, task, probe, metrics_a, metrics_b, seed)
    from llmassay.judge.report import review_sections  # judge–human agreement, when labels exist

    out.review = [s for root in dict.fromkeys((a.root, b.root)) for s in review_sections(root)]
    return out


def _compare_probe(
    out: Comparison, a: RunData, b: RunData, task: str, probe: str,
    metrics_a: dict[str, Any], metrics_b: dict[str, Any], seed: int,
) -> None:
    values = hook(probe, "paired_values")
    rows_a, rows_b = a.rows(task, probe), b.rows(task, probe)
    per_a = {str(r["id"]): values(r) for r in rows_a}
    per_b = {str(r["id"]): values(r) for r in rows_b}
    ids = [i for i in per_a if i in per_b]
    sources = _cluster_keys(rows_a, rows_b, ids)
    if sources is not None:
        out.notes.append(f"{task} / {probe}: items share sources (the rows' `cluster`, "
                            f"{len(set(sources.values()))} clusters): paired CIs are cluster bootstraps over them")
    for name, ma in metrics_a.items():
        if name not in metrics_b:
            continue
        kept = [i for i in ids if name in per_a[i] and name in per_b[i]]
        if kept:
            xa, xb = [per_a[i][name] for i in kept], [per_b[i][name] for i in kept]
            keys = [sources[i] for i in kept] if sources is not None else None
            out.paired.append(paired_delta(task, probe, name, xa, xb, seed, keys))
        else:
            mb = metrics_b[name]
            out.unpaired.append(MetricDelta(task, probe, name, ma, mb, mb["value"] - ma["value"]))


def _cluster_keys(rows_a: list[dict[str, Any]], rows_b: list[dict[str, Any]], ids: list[str]) -> dict[str, str] | None:
    """Each common item's source, when both runs' rows name it (the same one) for every item."""
    ka = {str(r["id"]): r.get("cluster") for r in rows_a}
    kb = {str(r["id"]): r.get("cluster") for r in rows_b}
    if not ids or any(ka.get(i) is None or ka.get(i) != kb.get(i) for i in ids):
        return None
    return {i: str(ka[i]) for i in ids}


# -- presentation ----------------------------------------------------------------------
def _f(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def _signed(value: float) -> str:
    return f"{value:+.4f}"


def _p(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.4f}" if value >= 1e-3 else f"{value:.1e}"


def paired_rows(cmp: Comparison) -> list[list[str]]:
    return [
        [d.task, d.probe, d.metric, str(d.n), _f(d.a), _f(d.b), _signed(d.delta),
         f"[{_signed(d.ci_low)}, {_signed(d.ci_high)}]" + ("" if d.clusters is None else f" ({d.clusters} clusters)"),
         _p(d.mcnemar_p),
         "—" if d.only_a is None else f"{d.only_a} / {d.only_b}",
         "—" if d.mde is None else f"{d.mde:.4f}"]
        for d in cmp.paired
    ]


PAIRED_COLUMNS = ["task", "probe", "metric", "n paired", "A", "B", "Δ B−A", "95% CI (paired bootstrap)",
                  "McNemar p", "=1 only in A / only in B", "MDE (80% power)"]
UNPAIRED_COLUMNS = ["task", "probe", "metric", "A [95% CI]", "B [95% CI]", "Δ B−A"]


def unpaired_rows(cmp: Comparison) -> list[list[str]]:
    def interval(m: dict[str, Any]) -> str:
        return f"{m['value']:.4f} [{bound_text(m['ci_low'])}, {bound_text(m['ci_high'])}] n={m['n']}"

    return [[d.task, d.probe, d.metric, interval(d.a), interval(d.b), _signed(d.delta)] for d in cmp.unpaired]


def comparison_tables(cmp: Comparison, width: int | None = None) -> list[Table]:
    """The paired and unpaired deltas; split into parts that fit `width` (terminal.py)."""
    tables = []
    for title, columns, rows in (
        (f"paired on common samples · A = {cmp.a} · B = {cmp.b}", PAIRED_COLUMNS, paired_rows(cmp)),
        ("reported values without per-sample pairing (no CI for the delta)", UNPAIRED_COLUMNS, unpaired_rows(cmp)),
    ):
        if rows:
            tables += fitted_tables(title, columns, rows, width, keys=3)
    return tables


def render_compare_html(cmp: Comparison) -> str:
    from llmassay.report.html import environment

    return environment().get_template("compare.html.j2").render(
        version=_version(), cmp=cmp, script_hashes="'none'",
        paired_columns=PAIRED_COLUMNS, paired_rows=paired_rows(cmp),
        unpaired_columns=UNPAIRED_COLUMNS, unpaired_rows=unpaired_rows(cmp),
    )


def write_compare(cmp: Comparison, html: str | Path | None = None, json_path: str | Path | None = None) -> list[Path]:
    written = []
    for path, text in ((html, lambda: render_compare_html(cmp)),
                       (json_path, lambda: json.dumps(cmp.as_dict(), indent=2, ensure_ascii=False) + "\n")):
        if path is None:
            continue
        target = Path(path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text(), encoding="utf-8")
        except OSError as exc:
            raise LlmassayError(f"{target}: cannot write ({exc.strerror or exc})") from None
        written.append(target)
    return written


def _version() -> str:
    from llmassay import __version__

    return __version__
