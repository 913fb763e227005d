"""`llmassay report TUNE_DIR`: a `tune sft|dpo` output folder — or a `tune cost` folder — as
one self-contained HTML page (no script, no network; the loss curve is inline SVG).

A tune folder's page: the run card (cost, leakage guard, allow_overlap, method, objective),
the training configuration, the loss curve (for DPO with the reward margin and accuracy)
drawn from loss.json, the training data (recipe or file, its hash, the first examples) and
the commands that evaluate the result. A cost folder's page: the LoRA-against-full table of
cost.json. Everything comes from the folder's JSON files, so the page is rebuilt at any time;
recipe prompts, file paths and model names are untrusted text, escaped by the templates.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from markupsafe import Markup

from llmassay.types import LlmassayError

CARD, CONFIG, LOSS, COST, DATA = "card.json", "config.json", "loss.json", "cost.json", "training_data.jsonl"
PANELS = ("loss", "reward_margin", "reward_accuracy")  # drawn when every step has them (DPO: all three)
CURVE_KEY = "tune-loss"  # the SVG's id salt; each panel's line is <g id="tune-loss-NAME">
EXAMPLES = 3  # training examples shown
LABELS = {  # card field → label (units); a field not listed shows under its own name
    "method": "method (lora: adapter; full: every weight)",
    "objective": "objective",
    "trainable_parameters": "trainable parameters",
    "total_parameters": "total parameters",
    "trainable_share": "trainable share",
    "steps": "steps",
    "resumed_at_step": "resumed at step",
    "loss_first": "loss, step 1",
    "loss_last": "loss, last step",
    "reward_margin_last_quarter": "reward margin, last quarter (mean)",
    "reward_accuracy_last_quarter": "reward accuracy, last quarter (mean)",
    "seconds_per_step": "seconds per step (median, wall)",
    "cpu_seconds_per_step": "CPU seconds per step (median)",
    "tokens_per_second": "tokens/s (training)",
    "training_seconds_all_runs": "training seconds, all runs",
    "weights_bytes": "weights in memory (bytes, computed)",
    "gradient_bytes": "gradients (bytes, computed)",
    "optimizer_state_bytes": "AdamW state (bytes, computed)",
    "reference_bytes": "DPO reference copy (bytes, computed)",
    "training_state_bytes": "training state: the four above (bytes)",
    "rss_after_load_mib": "RSS after loading (MiB, measured)",
    "peak_rss_mib": "peak RSS of the process (MiB, measured)",
    "output": "written",
    "output_bytes": "written: adapter/ or model/ (bytes)",
    "adapter_bytes": "adapter on disk (bytes)",
    "checkpoint_bytes": "checkpoint/ (bytes)",
    "wall_seconds": "wall seconds (this process: load, training, saving)",
    "loss_plot": "loss plot file",
    "allow_overlap": "allow_overlap (trained despite overlap)",
    "seed": "seed",
}


def _no_run(path: Path) -> bool:
    return not any(path.glob("results_*.json"))


def is_tune_folder(path: Path) -> bool:
    """`tune sft|dpo`'s --output-path: a run card and a training config, and no run of its own."""
    return path.is_dir() and (path / CARD).is_file() and (path / CONFIG).is_file() and _no_run(path)


def is_cost_folder(path: Path) -> bool:
    """`tune cost`'s --output-path: a cost.json (its lora/ and full/ are tune folders)."""
    return path.is_dir() and (path / COST).is_file() and _no_run(path)


def _read_json(path: Path, kind: type) -> Any:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LlmassayError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise LlmassayError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(value, kind):
        raise LlmassayError(f"{path}: expected a JSON {'object' if kind is dict else 'list'} at the top level")
    return value


def loss_panels(losses: list[dict[str, Any]]) -> dict[str, list[float]]:
    """The curves a loss log holds: the loss, and DPO's reward margin and accuracy."""
    return {name: [float(e[name]) for e in losses] for name in PANELS
            if losses and all(isinstance(e.get(name), (int, float)) for e in losses)}


def loss_curve_svg(losses: list[dict[str, Any]], title: str) -> str:
    """The loss curve (one panel per series of `loss_panels`) as an SVG string; raises a
    one-line error when matplotlib, the `report` extra, is missing."""
    from llmassay.report.plots import step_curves

    return step_curves(CURVE_KEY, [int(e["step"]) for e in losses], loss_panels(losses), title=title)


def _value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.6g}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _rows(mapping: dict[str, Any], labels: dict[str, str] | None = None) -> list[tuple[str, str, str]]:
    """(label, field, shown value) per field, in the file's order."""
    return [((labels or {}).get(k, k), k, _value(v)) for k, v in mapping.items()]


def _guard(card: dict[str, Any]) -> dict[str, Any] | None:
    g = card.get("leakage_guard")
    if not isinstance(g, dict):
        return None
    found = g.get("overlaps")
    overlaps: dict[str, Any] = found if isinstance(found, dict) else {}
    rows = [(str(task), str(item), ", ".join(map(str, ids)) if isinstance(ids, list) else str(ids))
            for task, items in overlaps.items() if isinstance(items, dict) for item, ids in items.items()]
    return {"tasks": ", ".join(map(str, g.get("tasks") or [])) or "none (no evaluation task named)",
            "ngram": _value(g.get("ngram") or {}), "clean": bool(g.get("clean", not rows)),
            "allowed": bool(g.get("allowed")), "overlaps": rows}


def _examples(folder: Path, n: int = EXAMPLES) -> list[list[tuple[str, str]]]:
    """The first training examples as (field, text) lists; an unreadable file shows none."""
    out: list[list[tuple[str, str]]] = []
    try:
        with (folder / DATA).open(encoding="utf-8") as lines:
            for line in lines:
                if len(out) >= n:
                    break
                row = json.loads(line)
                if isinstance(row, dict):
                    out.append([(str(k), str(v)) for k, v in row.items() if k != "text"])
    except (OSError, UnicodeDecodeError, ValueError):
        return out
    return out


def _with_arg(args: dict[str, Any], key: str, value: str) -> str:
    return ",".join([f"{k}={v}" for k, v in args.items() if k != key] + [f"{key}={value}"])


def _llamacpp_base(config: dict[str, Any]) -> str:
    """The llamacpp/ model for the base: its alias when it is a bundled file, else its GGUF path."""
    model, args = str(config.get("model") or ""), config.get("model_args") or {}
    gguf = args.get("gguf_file") if isinstance(args, dict) else None
    if not (model.startswith("hf/") and gguf):
        return "llamacpp/<the base model's GGUF>"
    path = Path(model.removeprefix("hf/")) / str(gguf)
    from llmassay.models import MODEL_ALIASES

    for alias, where in MODEL_ALIASES.items():
        try:
            if where().resolve() == path.resolve():
                return f"llamacpp/{alias}"
        except (LlmassayError, OSError):
            continue
    return f"llamacpp/{path}"


def evaluate_commands(folder: Path, config: dict[str, Any], card: dict[str, Any]) -> list[tuple[str, str]]:
    """(what it does, the command) for evaluating the tuned model, paths shell-quoted."""
    model = str(config.get("model") or "hf/<base>")
    args = {str(k): str(v) for k, v in (config.get("model_args") or {}).items()} if isinstance(
        config.get("model_args"), dict) else {}
    q = shlex.quote
    if card.get("output") == "model" or card.get("method") == "full":
        return [("the whole fine-tuned model loads as an hf/ folder",
                 f"llmassay assess --model {q('hf/' + str(folder / 'model'))} --quick -o runs/after")]
    base_args = f" --model-args {q(','.join(f'{k}={v}' for k, v in args.items()))}" if args else ""
    return [
        ("before: the base model", f"llmassay assess --model {q(model)}{base_args} --quick -o runs/before"),
        ("after: the adapter on hf/ (merged at load; its hash joins the fingerprint)",
         f"llmassay assess --model {q(model)} --model-args {q(_with_arg(args, 'adapter', str(folder / 'adapter')))} "
         "--quick -o runs/after"),
        ("after, on llama.cpp (llama-architecture bases, e.g. SmolLM2; converted to a GGUF LoRA on first use)",
         f"llmassay assess --model {q(_llamacpp_base(config))} --model-args {q('n_threads=1,lora=' + str(folder))} "
         "--quick -o runs/after-llamacpp"),
        ("the paired before/after on every probe", "llmassay compare runs/before runs/after"),
    ]


def _version() -> str:
    from llmassay import __version__

    return __version__


def build_tune_report(folder: str | Path) -> str:
    """The page of a `tune sft|dpo` output folder."""
    from llmassay.report.html import environment

    root = Path(folder)
    card, config = _read_json(root / CARD, dict), _read_json(root / CONFIG, dict)
    losses = _read_json(root / LOSS, list) if (root / LOSS).is_file() else []
    losses = [e for e in losses if isinstance(e, dict) and isinstance(e.get("step"), int)]
    source = str(config.get("recipe") or config.get("data") or "?")
    objective, method = str(card.get("objective", config.get("method", "?"))), str(card.get("method", "?"))
    plot, plot_note = None, None
    if losses and "loss" in loss_panels(losses):
        try:
            plot = Markup(loss_curve_svg(losses, f"{objective} loss, {source}"))
        except LlmassayError as exc:  # no matplotlib: the table below still has every step
            plot_note = str(exc)
    else:
        plot_note = f"{root / LOSS}: no steps logged"
    columns = [c for c in ("step", "loss", "reward_margin", "reward_accuracy", "logp_chosen", "logp_rejected",
                           "seconds", "cpu_seconds", "tokens") if any(c in e for e in losses)]
    hidden = ("versions", "model_fingerprint")
    return environment().get_template("tune_report.html.j2").render(
        version=_version(), script_hashes="'none'", folder=str(root), objective=objective, method=method,
        source=source, card=_rows({k: v for k, v in card.items() if k != "leakage_guard"}, LABELS),
        guard=_guard(card), allow_overlap=bool(card.get("allow_overlap")),
        config=_rows({k: v for k, v in config.items() if k not in hidden}),
        provenance=json.dumps({k: config.get(k) for k in hidden if k in config}, indent=1, ensure_ascii=False,
                              default=str),
        data={"recipe": config.get("recipe"), "file": config.get("data"), "pairs": _value(config.get("pairs")),
              "sha": str(config.get("pairs_sha") or "?"), "guard_tasks": ", ".join(map(str, config.get("guard_tasks")
                                                                                         or [])) or "none",
              "examples": _examples(root)},
        plot=plot, plot_note=plot_note, columns=columns,
        steps=[[_value(e.get(c)) for c in columns] for e in losses],
        evaluate=evaluate_commands(root, config, card),
    )


def build_cost_report(folder: str | Path) -> str:
    """The page of a `tune cost` folder: LoRA against full fine-tuning, with links to each arm's page."""
    from llmassay.report.html import REPORT_NAME, environment
    from llmassay.tune.cost import cost_cells

    root = Path(folder)
    result = _read_json(root / COST, dict)
    if not isinstance(result.get("rows"), list):
        raise LlmassayError(f"{root / COST}: field 'rows' is missing or not a list (not a `tune cost` output?)")
    try:
        rows = cost_cells(result)
    except (KeyError, TypeError, ValueError) as exc:
        raise LlmassayError(f"{root / COST}: unexpected content ({type(exc).__name__}: {exc})") from None
    arms = [(arm, f"{arm}/{REPORT_NAME}" if (root / arm / REPORT_NAME).is_file() else None, str(root / arm))
            for arm in ("lora", "full")]
    lr = result.get("lr") if isinstance(result.get("lr"), dict) else {}
    return environment().get_template("tune_cost.html.j2").render(
        version=_version(), script_hashes="'none'", folder=str(root), rows=rows, arms=arms,
        setting=_rows({"model": result.get("model"), "model_args": result.get("model_args"),
                       "recipe": result.get("recipe"), "objective": result.get("objective"),
                       "steps": result.get("steps"), "batch_size": result.get("batch_size"), "seed": result.get("seed"),
                       "lr (LoRA)": lr.get("lora"), "lr (full)": lr.get("full"),
                       "OMP_NUM_THREADS": result.get("omp_num_threads")}),
    )
