"""Plots as inline SVG strings, rendered by matplotlib without pyplot or a display.

SVG keeps the report one self-contained, offline file; text stays text (`svg.fonttype`
none) so the plots are small and searchable. Output is deterministic: no date, and
element ids are salted with a per-plot key so several plots can share one page without
id clashes. Labels are drawn literally (`text.parse_math` off): a `$` in a task or metric
name must not become mathtext, and matplotlib XML-escapes every text it writes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

PALETTE = ("#3b6ea8", "#d9822b", "#3a9b5c", "#b8455a", "#7d5ba6", "#8c7a5b")
Interval = tuple[float, float, float]  # value, ci_low, ci_high


def _matplotlib() -> Any:
    try:
        import matplotlib
    except ImportError:  # pragma: no cover - depends on the installed extras
        from llmassay.types import LlmassayError

        raise LlmassayError("the HTML report needs matplotlib: pip install 'llmassay[report]'") from None
    return matplotlib


@contextmanager
def _figure(key: str, width: float, height: float) -> Iterator[Any]:
    matplotlib = _matplotlib()
    from matplotlib.figure import Figure

    style = {
        "svg.hashsalt": f"llmassay-{key}",
        "svg.fonttype": "none",
        "text.parse_math": False,
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.titlesize": 10,
    }
    with matplotlib.rc_context(style):
        yield Figure(figsize=(width, height), layout="constrained")


def _svg(fig: Any) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :].strip()


def bars_with_ci(
    key: str,
    categories: Sequence[str],
    series: Mapping[str, Sequence[Interval | None]],
    *,
    title: str,
    axis_label: str,
    limits: tuple[float, float] | None = (0.0, 1.0),
    reference: float | None = None,
    reference_label: str = "",
) -> str:
    """Bars with 95 % CI whiskers: one bar per category and series (None = not measured;
    an infinite bound = not estimable, marked "n.e." instead of a whisker).
    More than six categories are drawn horizontally so their names stay readable."""
    horizontal = len(categories) > 6
    n_series = max(1, len(series))
    rows = max(1, len(categories))
    width, height = (6.4, 0.9 + 0.28 * rows * (1 + 0.35 * (n_series - 1))) if horizontal else (6.4, 3.0)
    with _figure(key, width, height) as fig:
        ax = fig.subplots()
        slot = 0.8 / n_series
        unbounded = False
        for s, (name, intervals) in enumerate(series.items()):
            points = [(i, iv) for i, iv in enumerate(intervals) if iv is not None and math.isfinite(iv[0])]
            pos = [i - 0.4 + slot * (s + 0.5) for i, _ in points]
            values = [iv[0] for _, iv in points]
            errors = [
                [max(0.0, iv[0] - iv[1]) if math.isfinite(iv[1]) else 0.0 for _, iv in points],
                [max(0.0, iv[2] - iv[0]) if math.isfinite(iv[2]) else 0.0 for _, iv in points],
            ]
            colour = PALETTE[s % len(PALETTE)]
            label = name if len(series) > 1 else None
            if horizontal:
                ax.barh(pos, values, height=slot * 0.9, xerr=errors, color=colour, label=label,
                        error_kw={"elinewidth": 1, "capsize": 2, "ecolor": "#333"})
            else:
                ax.bar(pos, values, width=slot * 0.9, yerr=errors, color=colour, label=label,
                       error_kw={"elinewidth": 1, "capsize": 3, "ecolor": "#333"})
            for p, (_, iv) in zip(pos, points):
                if math.isinf(iv[1]) or math.isinf(iv[2]):
                    unbounded = True
                    side = "↑" if math.isinf(iv[2]) else "↓"
                    xy = (iv[0], p) if horizontal else (p, iv[0])
                    ax.annotate(f"{side} n.e.", xy, fontsize=7, color="#333", ha="left" if horizontal else "center",
                                va="center" if horizontal else "bottom")
        ticks = list(range(len(categories)))
        if horizontal:
            ax.set_yticks(ticks, list(categories))
            ax.invert_yaxis()
            ax.set_xlabel(axis_label)
            if limits:
                ax.set_xlim(*limits)
            if reference is not None:
                ax.axvline(reference, color="#888", linestyle="--", linewidth=1, label=reference_label or None)
        else:
            ax.set_xticks(ticks, list(categories))
            ax.set_ylabel(axis_label)
            if limits:
                ax.set_ylim(*limits)
            if reference is not None:
                ax.axhline(reference, color="#888", linestyle="--", linewidth=1, label=reference_label or None)
        ax.set_title(title)
        if unbounded:  # an infinite bound (report.section.interval): the data give no number for it
            fig.text(0.99, 0.01, "n.e.: CI bound not estimable from this many samples", fontsize=7,
                     ha="right", va="bottom", color="#333")
        if len(series) > 1:  # below the axes, where no bar can hide it
            fig.legend(loc="outside lower center", ncol=len(series) + 1, fontsize=8, frameon=False)
        elif reference is not None and reference_label:
            ax.legend(fontsize=8, frameon=False)
        return _svg(fig)


def histogram(key: str, values: Sequence[float], bins: Sequence[float], *, title: str, axis_label: str) -> str:
    with _figure(key, 6.4, 2.8) as fig:
        ax = fig.subplots()
        from matplotlib.ticker import MaxNLocator

        ax.hist(list(values), bins=list(bins), color=PALETTE[0], edgecolor="white")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title)
        ax.set_xlabel(axis_label)
        ax.set_ylabel("items")
        return _svg(fig)


def heatmap(key: str, matrix: Sequence[Sequence[float]], labels: Sequence[str], *, title: str) -> str:
    """A small square matrix of shares in [0, 1], each cell annotated with its value."""
    size = 1.6 + 0.75 * len(labels)
    with _figure(key, size + 1.2, size) as fig:
        ax = fig.subplots()
        image = ax.imshow([list(r) for r in matrix], vmin=0, vmax=1, cmap="Blues")
        ax.set_xticks(range(len(labels)), list(labels))
        ax.set_yticks(range(len(labels)), list(labels))
        for i, row in enumerate(matrix):
            for j, value in enumerate(row):
                text = "–" if not math.isfinite(value) else f"{value:.2f}"
                ax.text(j, i, text, ha="center", va="center", color="white" if value > 0.6 else "#222")
        ax.spines[:].set_visible(False)
        ax.set_title(title)
        fig.colorbar(image, ax=ax, shrink=0.8)
        return _svg(fig)


def grid_heatmap(key: str, matrix: Sequence[Sequence[float | None]], rows: Sequence[str], columns: Sequence[str], *,
                 title: str, row_label: str, column_label: str) -> str:
    """A rows × columns matrix of shares in [0, 1] (None: not measured), each cell annotated
    (e.g. needle accuracy by context length × depth)."""
    values = [[math.nan if v is None else float(v) for v in r] for r in matrix]
    with _figure(key, 1.8 + 0.7 * len(columns), 1.2 + 0.45 * len(rows)) as fig:
        ax = fig.subplots()
        image = ax.imshow(values, vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
        ax.set_xticks(range(len(columns)), list(columns))
        ax.set_yticks(range(len(rows)), list(rows))
        ax.set_xlabel(column_label)
        ax.set_ylabel(row_label)
        for i, line in enumerate(values):
            for j, value in enumerate(line):
                ax.text(j, i, "–" if not math.isfinite(value) else f"{value:.2f}", ha="center", va="center", color="#111")
        ax.spines[:].set_visible(False)
        ax.set_title(title)
        fig.colorbar(image, ax=ax, shrink=0.8)
        return _svg(fig)


def trend_with_size(key: str, points: Sequence[tuple[str, float, Interval]], line: tuple[float, float] | None, *,
                    title: str, axis_label: str) -> str:
    """A metric against parameters (log axis): each model a point with its 95 % CI whisker
    (label, parameters, interval), and the fitted line value = intercept + slope·log10(parameters)."""
    with _figure(key, 5.2, 3.0) as fig:
        ax = fig.subplots()
        ax.set_xscale("log")
        for i, (label, params, (value, low, high)) in enumerate(points):
            err = [[max(0.0, value - low) if math.isfinite(low) else 0.0], [max(0.0, high - value) if math.isfinite(high) else 0.0]]
            ax.errorbar([params], [value], yerr=err, fmt="o", color=PALETTE[i % len(PALETTE)], capsize=3, label=label)
        if line is not None and points:
            xs = sorted(p[1] for p in points)
            ax.plot(xs, [line[0] + line[1] * math.log10(x) for x in xs], color="#555", linestyle="--", linewidth=1,
                    label="fit")
        ax.set_xlabel("parameters")
        ax.set_ylabel(axis_label)
        ax.set_title(title)
        fig.legend(loc="outside lower center", ncol=min(4, len(points) + 1), fontsize=7, frameon=False)
        return _svg(fig)


def step_curves(key: str, steps: Sequence[int], panels: Mapping[str, Sequence[float]], *, title: str) -> str:
    """Training curves against the step: one stacked panel per named series (a loss, a
    reward margin, an accuracy), sharing the step axis. Each line is `<g id="KEY-NAME">` in the
    SVG, so a test (or a reader) finds the curve of a series by its name."""
    names = list(panels)
    with _figure(key, 5.2, 1.2 + 1.3 * max(1, len(names))) as fig:
        axes = fig.subplots(max(1, len(names)), 1, sharex=True, squeeze=False)[:, 0]
        for i, (ax, name) in enumerate(zip(axes, names)):
            ax.plot(list(steps), list(panels[name]), color=PALETTE[i % len(PALETTE)], marker="o", markersize=2,
                    linewidth=1, gid=f"{key}-{name}")
            ax.set_ylabel(name.replace("_", " "))
        axes[0].set_title(title)
        axes[-1].set_xlabel("step")
        return _svg(fig)
