"""`llmassay report RUN_DIR`: one self-contained HTML file (CSS, JS, SVG plots and the
samples inline) that opens offline in any browser.

Prompts and model outputs are untrusted text. Templates autoescape everything; the
samples travel as JSON inside an inert `<script type="application/json">` with `<`, `>`,
`&`, U+2028 and U+2029 escaped, and the browser script writes them with `textContent`
only. A Content-Security-Policy allows no network and no script but our own (by hash),
so even markup that slipped through could neither run nor load anything.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import math
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from llmassay.report.rundir import RunData, load_run
from llmassay.report.section import BrowserRow, Section, SectionContext, hook
from llmassay.report.table import summary_rows, token_line
from llmassay.types import NOT_ESTIMABLE, LlmassayError

REPORT_NAME = "report.html"
INLINE_LIMIT = 4_000_000  # characters of sample JSON kept readable inline; more is gzipped
LEVELS = ("good", "warn", "bad", "info")
_SCRIPT_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_BROWSER_KEYS = {"task": "t", "probe": "p", "id": "id", "variant": "v", "correct": "c", "brittle": "b",
                 "json_valid": "j", "prompt": "prompt", "output": "out", "scores": "s", "gold": "g"}


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("llmassay.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(fmt=fmt, to_json=lambda v: json.dumps(v, indent=1, ensure_ascii=False, default=str))
    return env


def script_json(value: Any) -> Markup:
    """JSON that is safe inside a <script> element: nothing in it can close the element
    or start markup, and JavaScript's line separators are escaped."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for char, escaped in _SCRIPT_ESCAPES.items():
        text = text.replace(char, escaped)
    return Markup(text)


def embedded_samples(rows: list[dict[str, Any]], inline_limit: int | None = None) -> dict[str, Any]:
    """The browser's rows as the template embeds them: plain JSON while small (readable
    with view-source), gzip + base64 beyond `inline_limit` characters. A brittleness run
    repeats each question in every variant's prompt, so gzip shrinks it about tenfold and a
    14k-item report stays one file; the page decompresses it with the browser's own
    DecompressionStream after the rest has rendered."""
    text = str(script_json(rows))
    if len(text) <= (INLINE_LIMIT if inline_limit is None else inline_limit):
        return {"kind": "json", "text": Markup(text)}
    packed = base64.b64encode(gzip.compress(text.encode("utf-8"), compresslevel=6, mtime=0)).decode("ascii")
    return {"kind": "gzip", "text": Markup(packed), "rows": len(rows)}


def browser_script() -> str:
    return resources.files("llmassay.report").joinpath("templates/browser.js").read_text(encoding="utf-8")


def csp_hash(script: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode() + "'"


def fmt(value: Any) -> str:
    if value is None:  # a CI bound the data could not give (types.Metric)
        return NOT_ESTIMABLE
    if isinstance(value, float):
        return "nan" if not math.isfinite(value) else f"{value:.4f}"
    return str(value)


def sections_and_rows(run: RunData) -> tuple[list[Section], list[BrowserRow]]:
    """Each (task, probe) through its probe's hooks (or the generic ones)."""
    sections: list[Section] = []
    rows: list[BrowserRow] = []
    for task, probes in run.results["results"].items():
        for probe in probes:
            ctx = SectionContext(task, probe, run.probe_metrics(task, probe), run.details(task, probe),
                                 run.rows(task, probe), index=len(sections))
            sections.append(hook(probe, "build")(ctx))
            rows += hook(probe, "browser_rows")(ctx)
    from llmassay.judge.report import judge_sections  # judge figures and human agreement, when present

    sections += judge_sections(run.root)
    from llmassay.report.groups import group_sections  # lm-eval group scores, when present

    sections += group_sections(run.results)
    return sections, rows


def header(run: RunData) -> list[tuple[str, str]]:
    r = run.results
    model = r.get("model") or {}
    config = r.get("config") or {}
    engine = r.get("engine") or {}
    tasks = r.get("tasks") or {}
    tokens = token_line(engine)
    wall = r.get("wall_time_s")
    return [
        ("model", str(model.get("spec", "?"))),
        ("backend", str((model.get("fingerprint") or {}).get("backend", "?"))),
        ("model sha256", str(model.get("sha256") or "?")),
        ("tasks", "; ".join(
            f"{name} (n = {(info or {}).get('n_samples', '?')}, content hash {str((info or {}).get('content_hash', '?'))[:12]})"
            for name, info in tasks.items()) or ", ".join(r["results"])),
        ("probes", ", ".join(map(str, config.get("probes") or []))),
        ("seed", str(r.get("seed", config.get("seed", "?")))),
        ("llmassay version", str((r.get("versions") or {}).get("llmassay", "?"))),
        ("git commit", str(r.get("git_commit") or "?")),
        ("wall time", f"{wall:.1f} s" if isinstance(wall, (int, float)) else "?"),
        ("tokens", tokens),
        ("config hash", str(r.get("config_hash", "?"))),
        ("results file", f"{run.results_path.name} (written {run.timestamp} UTC)"),
    ]


def summary_card(run: RunData, sections: list[Section]) -> list[dict[str, str]]:
    """The card's lines, each linked to its (task, probe) section."""
    anchors = {(s.task, s.probe): f"section-{i}" for i, s in enumerate(sections, 1)}
    lines = [line for line in run.results.get("summary") or [] if isinstance(line, dict)]
    return [
        {"challenge": challenge, "task": task, "headline": figure, "verdict": verdict,
         "level": str(line.get("level", "info")) if line.get("level") in LEVELS else "info",
         "anchor": anchors.get((task, str(line.get("probe"))), "summary")}
        for line, (challenge, task, figure, verdict) in zip(lines, summary_rows(run.results))
    ]


def build_report(run: RunData) -> str:
    sections, rows = sections_and_rows(run)
    script = browser_script()
    notes = [f"{key}: {note}" for key, values in (run.results.get("notes") or {}).items() for note in values]
    notes += [f"{task}: no samples file next to the results file; its samples are not browsable"
              for task in run.missing_samples]
    config = run.results.get("config") or {}
    return environment().get_template("report.html.j2").render(
        version=(run.results.get("versions") or {}).get("llmassay", "?"),
        model=run.model_spec,
        tasks=list(run.results["results"]),
        probes=[str(p) for p in config.get("probes") or []],
        header=header(run),
        card=summary_card(run, sections),
        preset=config.get("preset"),
        notes=notes,
        metrics=run.metrics(),
        sections=sections,
        samples=embedded_samples([{_BROWSER_KEYS[k]: v for k, v in asdict(b).items()} for b in rows]),
        script=Markup(script),
        script_hashes=csp_hash(script),
    )


def is_judge_folder(path: Path) -> bool:
    """`llmassay judge`'s --output-path: a judge_results.json and no run of its own."""
    from llmassay.judge.report import RESULTS

    return path.is_dir() and (path / RESULTS).is_file() and not any(path.glob("results_*.json"))


def build_judge_report(root: Path) -> str:
    """A judge's output folder on its own: the judge's tables and any review labels in it,
    in the report's page (no run: no metrics table, no samples)."""
    from llmassay.judge.report import RESULTS, judge_sections

    path = root / RESULTS
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise LlmassayError(f"{path}: cannot read ({exc})") from None
    if not isinstance(result, dict) or not isinstance(result.get("runs"), dict):
        raise LlmassayError(f"{path}: field 'runs' is missing or not an object (not a `llmassay judge` output?)")
    try:
        sections = judge_sections(root)
    except (KeyError, TypeError, ValueError) as exc:
        raise LlmassayError(f"{path}: unexpected content ({type(exc).__name__}: {exc})") from None
    judge = (result.get("judge") or {}).get("judge", "?")
    runs = result["runs"]
    script = browser_script()
    return environment().get_template("report.html.j2").render(
        version="?", model=f"judge {judge}", tasks=[f"{runs.get('a')} vs {runs.get('b')}"], probes=["judge"],
        header=[("judge", str(judge)), ("run A", str(runs.get("a"))), ("run B", str(runs.get("b"))),
                ("results file", str(path))],
        card=[], notes=[result["warning"]] if result.get("warning") else [], metrics=[], sections=sections,
        samples=embedded_samples([]), script=Markup(script), script_hashes=csp_hash(script),
    )


def write_report(run_path: str | Path, output: str | Path | None = None) -> Path:
    """Render the run at `run_path` (directory or results file), a judge's output folder,
    a several-model folder (its matrix and each model's summary), or a `tune` output folder
    (its run card and loss curve; `tune cost`: the LoRA-against-full table); returns the HTML path."""
    from llmassay.report.matrix import build_matrix, is_matrix_folder, matrix_runs, render_models_report
    from llmassay.report.tune import build_cost_report, build_tune_report, is_cost_folder, is_tune_folder

    path = Path(run_path)
    if is_judge_folder(path):
        root, html = path, build_judge_report(path)
    elif is_matrix_folder(path):
        root, html = path, render_models_report(build_matrix(matrix_runs(path)), path)
    elif is_tune_folder(path):
        root, html = path, build_tune_report(path)
    elif is_cost_folder(path):
        root, html = path, build_cost_report(path)
    elif path.is_dir() and not any(path.glob("results_*.json")):
        raise LlmassayError(f"{path}: no results_*.json in this directory, and no card.json (`tune`), cost.json "
                            "(`tune cost`), judge_results.json or matrix.json: not a folder `llmassay report` reads")
    else:
        run = load_run(run_path)
        root, html = run.root, build_report(run)
    out = Path(output) if output else root / REPORT_NAME
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(html, encoding="utf-8")
        tmp.replace(out)
    except OSError as exc:
        raise LlmassayError(f"{out}: cannot write the report ({exc.strerror or exc})") from None
    return out
