"""Several models' runs as one matrix: models × (task, probe, headline metric), each cell
value [95 % CI] n, the best per row marked only where it is separated from the next best,
each model's size (parameters, architecture, quantisation) and the trend with size
(`llmassay.scaling`). Written as OUT/matrix.json and a self-contained OUT/matrix.html.

The best of a row is tested against the runner-up: on the items both answered, by the
paired bootstrap of `compare` (the row's per-item values), else — no per-item values, or
different items — by non-overlapping CIs, which is the conservative test. The method used
is written next to each row.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from markupsafe import Markup
from rich.table import Table

from llmassay.backends.model_size import ModelSize
from llmassay.report.compare import paired_delta
from llmassay.report.regression import LOWER_IS_BETTER, base_name
from llmassay.report.rundir import RunData, load_run
from llmassay.report.section import hook
from llmassay.scaling import SizePoint, Trend, family_notes, fit_trend, parameter_text, same_size_notes
from llmassay.terminal import fitted_tables
from llmassay.types import LlmassayError, bound_text

MATRIX_JSON, MATRIX_HTML = "matrix.json", "matrix.html"
# Metrics whose ideal is not an end of the scale (a share of pairs where the model prefers the
# stereotype: 0.5 is no preference): no best is marked and no trend is called inverse.
NO_BETTER_END = frozenset({"stereotype_controlled", "stereotype_whole"})


def direction(metric: str) -> bool | None:
    """True: higher is better; False: lower is better; None: neither end is better."""
    name = base_name(metric)
    return None if name in NO_BETTER_END else name not in LOWER_IS_BETTER


@dataclass(frozen=True)
class MatrixModel:
    spec: str
    run: str  # the model's run folder
    size: ModelSize | None

    @property
    def label(self) -> str:
        if self.size is None:
            return f"{self.spec} (size unknown)"
        facts = [parameter_text(self.size.parameters), self.size.architecture or "?", self.size.quantisation or "?"]
        return f"{self.spec} ({', '.join(facts)})"


@dataclass(frozen=True)
class Cell:
    value: float
    ci_low: float | None
    ci_high: float | None
    n: int
    best: bool = False

    def text(self) -> str:
        return (f"{self.value:.4f} [{bound_text(self.ci_low)}, {bound_text(self.ci_high)}] n={self.n}"
                + (" ★" if self.best else ""))


@dataclass
class MatrixRow:
    task: str
    probe: str
    metric: str
    higher_is_better: bool | None  # None: neither end of the scale is better (NO_BETTER_END)
    cells: list[Cell | None]  # in the models' order; None: the model's run lacks this metric
    separation: str = ""  # how the best was tested against the runner-up, and the outcome
    trend: Trend | None = None
    trend_note: str = ""  # why there is no trend, when there is none
    across_families: bool = False  # the sized models differ in architecture: a comparison, not a scaling law


@dataclass
class Matrix:
    models: list[MatrixModel]
    rows: list[MatrixRow]
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for row, raw in zip(self.rows, out["rows"]):
            raw["trend"] = row.trend.as_dict() if row.trend is not None else None
        return out


def build_matrix(paths: Sequence[str | Path], seed: int = 0) -> Matrix:
    """The matrix of the runs at `paths` (one per model, in column order)."""
    if len(paths) < 2:
        raise LlmassayError("a models × metrics matrix needs at least two runs")
    runs = [load_run(p) for p in paths]
    models = [MatrixModel(r.model_spec, str(r.root), ModelSize.from_dict((r.results.get("model") or {}).get("size")))
              for r in runs]
    sized = [m.size for m in models if m.size is not None]
    notes = family_notes([s.architecture for s in sized], [s.quantisation for s in sized])
    notes += same_size_notes([(m.spec, m.size.parameters, m.size.architecture, m.size.quantisation)
                              for m in models if m.size is not None])
    notes += [f"{m.spec}: its backend does not give the model's size: left out of the trends"
              for m in models if m.size is None or m.size.parameters is None]
    rows = [_row(runs, models, task, probe, metric, seed) for task, probe, metric in headline_metrics(runs)]
    return Matrix(models, rows, notes)


def is_matrix_folder(path: Path) -> bool:
    """A several-model `--output-path`: a matrix.json and no run of its own."""
    return path.is_dir() and (path / MATRIX_JSON).is_file() and not any(path.glob("results_*.json"))


def matrix_runs(folder: Path) -> list[Path]:
    """The model run folders a matrix.json lists, in column order (a folder moved with its
    matrix is found under it by name)."""
    path = folder / MATRIX_JSON
    try:
        models = json.loads(path.read_text(encoding="utf-8"))["models"]
        runs = [Path(str(m["run"])) for m in models]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise LlmassayError(f"{path}: cannot read its models ({type(exc).__name__}: {exc})") from None
    return [run if run.is_dir() else folder / run.name for run in runs]


def headline_metrics(runs: Sequence[RunData]) -> list[tuple[str, str, str]]:
    """(task, probe, metric) of every run's summary card line, in order; a (task, probe)
    without a card line gives its first metric."""
    chosen: dict[tuple[str, str], str] = {}
    for run in runs:
        for line in run.results.get("summary") or []:
            if isinstance(line, dict) and run.probe_metrics(str(line.get("task")), str(line.get("probe"))).get(
                    str(line.get("metric"))) is not None:
                chosen.setdefault((str(line["task"]), str(line["probe"])), str(line["metric"]))
    for run in runs:
        for task, probes in run.results["results"].items():
            for probe, metrics in probes.items():
                if metrics:
                    chosen.setdefault((task, probe), next(iter(metrics)))
    return [(task, probe, metric) for (task, probe), metric in chosen.items()]


def _items(run: RunData, task: str, probe: str, metric: str) -> dict[str, float]:
    values = hook(probe, "paired_values")
    out = {}
    for row in run.rows(task, probe):
        value = values(row).get(metric)
        if value is not None:
            out[str(row["id"])] = float(value)
    return out


def _row(runs: Sequence[RunData], models: Sequence[MatrixModel], task: str, probe: str, metric: str,
         seed: int) -> MatrixRow:
    higher = direction(metric)
    cells: list[Cell | None] = []
    for run in runs:
        m = run.probe_metrics(task, probe).get(metric)
        cells.append(None if m is None else Cell(float(m["value"]), m["ci_low"], m["ci_high"], int(m["n"])))
    items = [_items(run, task, probe, metric) for run in runs]
    row = MatrixRow(task, probe, metric, higher, cells)
    _mark_best(row, runs, models, items, seed)
    points = [SizePoint(m.spec, m.size.parameters, c.value, it)
              for m, c, it in zip(models, cells, items) if c is not None and m.size and m.size.parameters]
    row.trend = fit_trend(points, higher, seed)
    row.across_families = len({m.size.architecture for m in models if m.size and m.size.parameters}) > 1
    if row.trend is None:
        sizes = len({p.parameters for p in points})
        row.trend_note = ("the models with this metric have one size: a comparison, not a trend" if sizes == 1
                          and len(points) > 1 else "fewer than two model sizes with this metric" if sizes < 2
                          else "no per-item values to resample (the run kept no samples of this metric)")
    return row


def _mark_best(row: MatrixRow, runs: Sequence[RunData], models: Sequence[MatrixModel],
               items: Sequence[dict[str, float]], seed: int) -> None:
    present = [i for i, c in enumerate(row.cells) if c is not None]
    if len(present) < 2:
        row.separation = "only one model has this metric"
        return
    if row.higher_is_better is None:
        row.separation = "neither end of this metric is better (0.5: no preference): no best marked"
        return
    sign = 1 if row.higher_is_better else -1
    order = sorted(present, key=lambda i: -sign * row.cells[i].value)  # type: ignore[union-attr]
    best, second = order[0], order[1]
    b, s = row.cells[best], row.cells[second]
    assert b is not None and s is not None
    hashes = {(r.results.get("tasks") or {}).get(row.task, {}).get("content_hash") for r in (runs[best], runs[second])}
    common = [i for i in items[best] if i in items[second]]
    if len(common) >= 2 and len(hashes) == 1:
        d = paired_delta(row.task, row.probe, row.metric, [items[second][i] for i in common],
                         [items[best][i] for i in common], seed)
        separated = d.ci_low > 0 if row.higher_is_better else d.ci_high < 0
        how = (f"paired bootstrap over {d.n} common items: {models[best].spec} − {models[second].spec} = "
               f"{d.delta:+.4f} [{d.ci_low:+.4f}, {d.ci_high:+.4f}]")
    else:
        separated = (b.ci_low is not None and s.ci_high is not None and b.ci_low > s.ci_high) if row.higher_is_better \
            else (b.ci_high is not None and s.ci_low is not None and b.ci_high < s.ci_low)
        how = f"non-overlapping 95 % CIs (no per-item pairing): {models[best].spec} vs {models[second].spec}"
    if b.value == s.value:
        separated = False
    row.separation = f"{how}: {'separated' if separated else 'not separated, no best marked'}"
    if separated:
        row.cells[best] = Cell(b.value, b.ci_low, b.ci_high, b.n, best=True)


# -- presentation ----------------------------------------------------------------------
def _trend_text(row: MatrixRow) -> str:
    t = row.trend
    if t is None:
        return f"— ({row.trend_note})"
    text = f"{t.verdict}{' (across families)' if row.across_families else ''}: slope {t.slope:+.3f}/10× [{t.slope_ci[0]:+.3f}, {t.slope_ci[1]:+.3f}]"
    if t.points > t.sizes:
        text += f"; {t.points} models at {t.sizes} sizes"
    if t.curvature is not None and t.curvature_ci is not None:
        text += f"; quadratic {t.curvature:+.3f} [{t.curvature_ci[0]:+.3f}, {t.curvature_ci[1]:+.3f}]"
    return text


def matrix_columns(matrix: Matrix) -> list[str]:
    return ["task", "probe", "metric", *(m.label for m in matrix.models), "trend with size (per tenfold parameters)"]


def matrix_rows(matrix: Matrix) -> list[list[str]]:
    return [[r.task, r.probe, r.metric + {True: "", False: " (lower is better)", None: " (0.5: no preference)"}[
             r.higher_is_better],
             *("—" if c is None else c.text() for c in r.cells), _trend_text(r)] for r in matrix.rows]


def matrix_tables(matrix: Matrix, width: int | None = None) -> list[Table]:
    """The matrix at the terminal (split into parts that fit `width`)."""
    title = "models × metrics: value [95% CI] n; ★ best, separated from the next best"
    return fitted_tables(title, matrix_columns(matrix), matrix_rows(matrix), width, keys=3)


def trend_plots(matrix: Matrix) -> list[tuple[str, Markup]]:
    """(row name, SVG) for each row with a trend: the models' values with CIs against size, and the fit."""
    from llmassay.report.plots import trend_with_size

    out = []
    for i, row in enumerate(matrix.rows):
        if row.trend is None:
            continue
        points = [(m.spec, float(m.size.parameters), (c.value, _bound(c.ci_low, -1), _bound(c.ci_high, 1)))
                  for m, c in zip(matrix.models, row.cells) if c is not None and m.size and m.size.parameters]
        name = f"{row.task} · {row.probe} · {row.metric}"
        svg = trend_with_size(f"trend-{i}", points, (row.trend.intercept, row.trend.slope),
                              title=f"{name}: {row.trend.verdict}", axis_label=row.metric)
        out.append((name, Markup(svg)))
    return out


def _bound(value: float | None, side: int) -> float:
    return side * math.inf if value is None else float(value)


def _page_context(matrix: Matrix) -> dict[str, Any]:
    """What the matrix's cards (`_matrix_cards.html.j2`) render, for either page."""
    from llmassay import __version__

    return dict(
        version=__version__, matrix=matrix, script_hashes="'none'",
        columns=matrix_columns(matrix), rows=matrix_rows(matrix),
        best=[[bool(c and c.best) for c in r.cells] for r in matrix.rows],
        separations=[f"{r.task} · {r.probe} · {r.metric}: {r.separation}" for r in matrix.rows],
        methods=sorted({r.trend.method for r in matrix.rows if r.trend is not None}),
        plots=trend_plots(matrix),
    )


def render_matrix_html(matrix: Matrix) -> str:
    from llmassay.report.html import environment

    return environment().get_template("matrix.html.j2").render(**_page_context(matrix))


def render_models_report(matrix: Matrix, out_dir: str | Path) -> str:
    """The several-model folder's report.html: the matrix's cards, then each model's summary
    card lines and a link (relative to `out_dir`) to its own report.html."""
    from llmassay.report.html import REPORT_NAME, environment
    from llmassay.report.table import summary_rows

    each = []
    for m in matrix.models:
        folder = Path(m.run)
        report = folder / REPORT_NAME
        try:
            lines = summary_rows(load_run(folder).results)
        except LlmassayError:
            lines = []
        each.append({"label": m.label, "folder": str(folder), "lines": lines,
                     "report": os.path.relpath(report, out_dir) if report.is_file() else None})
    return environment().get_template("models_report.html.j2").render(**_page_context(matrix), each=each)


def write_matrix(matrix: Matrix, out_dir: str | Path) -> list[Path]:
    """OUT/matrix.json, OUT/matrix.html and OUT/report.html (the matrix with each model's summary)."""
    from llmassay.report.html import REPORT_NAME

    root = Path(out_dir)
    written = []
    for name, text in ((MATRIX_JSON, lambda: json.dumps(matrix.as_dict(), indent=2, ensure_ascii=False) + "\n"),
                       (MATRIX_HTML, lambda: render_matrix_html(matrix)),
                       (REPORT_NAME, lambda: render_models_report(matrix, root))):
        target = root / name
        try:
            root.mkdir(parents=True, exist_ok=True)
            target.write_text(text(), encoding="utf-8")
        except OSError as exc:
            raise LlmassayError(f"{target}: cannot write ({exc.strerror or exc})") from None
        written.append(target)
    return written
