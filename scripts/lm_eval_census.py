"""Count how many of the task configs lm-eval ships llmassay's loader accepts.

    pip download lm-eval==0.4.13 --no-deps -d /tmp/w
    PYTHONPATH=src python scripts/lm_eval_census.py /tmp/w/lm_eval-0.4.13-py3-none-any.whl

Every `*.yaml` under `lm_eval/tasks/` is read as llmassay reads a task file: `include:`
resolved, every `!function` checked to name a function that exists in the task's folder
(found by parsing the file, nothing is imported or run), then the checks that need no data
(output type, metrics, filters, few-shot sampler, keys that would change scores). A config
that passes loads offline given its data (`--data-dir`, `--trust-task-code` where it has
`!function`); the data-dependent steps (templates on real documents) are not exercised here.
Group configs (`group:` with a `task:` list) are counted apart: they expand to their tasks
and their `aggregate_metric_list` is computed as lm-eval does (tasks/groups.py).
"""

from __future__ import annotations

import ast
import re
import sys
import tempfile
import warnings
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

from llmassay.tasks.filters import GenerationScoring
from llmassay.tasks.groups import GroupSpec
from llmassay.tasks.lmeval_yaml import FunctionRef, TaskConfigError, read_config
from llmassay.tasks.loader import (
    TaskError,
    _check_header,
    _custom_metric_names,
    _fewshot_sampler,
    _field_error,
    _metric_names,
)
from llmassay.types import LlmassayError


def _functions(file: Path) -> set[str]:
    """Names a module defines; '*' where it also makes names at import (`globals()[...] = ...`, `globals().update(...)`)."""
    try:
        source = file.read_text(encoding="utf-8")
        tree = ast.parse(source)
    except (OSError, SyntaxError, UnicodeDecodeError):
        return set()
    dynamic = {"*"} if "globals()" in source else set()
    return dynamic | {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))} | {
        t.id for n in ast.walk(tree) if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}


def _check_functions(value: Any, cache: dict[Path, set[str]]) -> Any:
    """Stand-ins for `!function`s that exist (so the checks below see a callable)."""
    if isinstance(value, FunctionRef):
        module, _, name = value.dotted.rpartition(".")
        file = value.yaml_path.parent / f"{module.replace('.', '/')}.py"
        if file not in cache:
            cache[file] = _functions(file) if file.is_file() else set()
        if name not in cache[file] and "*" not in cache[file]:
            raise TaskConfigError(f"!function {value.dotted} not found")
        return lambda *a, **k: None
    if isinstance(value, dict):
        return {k: _check_functions(v, cache) for k, v in value.items()}
    if isinstance(value, list):
        return [_check_functions(v, cache) for v in value]
    return value


def verdict(path: Path, cache: dict[Path, set[str]]) -> tuple[str, bool]:
    """('ok' | 'group' | the reason it fails, whether it uses !function)."""
    try:
        config, lines = read_config(path)
    except TaskConfigError as exc:
        return _reason(str(exc)), False
    uses_code = "FunctionRef" in repr(config)
    if "class" in config:
        return "python task class (class:)", uses_code
    if isinstance(config.get("group"), str) and "task" in config and isinstance(config["task"], list):
        try:
            GroupSpec.from_config(config, str(path))
        except LlmassayError as exc:
            return "group refused: " + _reason(str(exc)), uses_code
        return "group", uses_code
    try:
        config = _check_functions(config, cache)
        fail = _field_error(path, lines)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _check_header(path, config, lines)
            output_type = config.get("output_type", "generate_until")
            if config.get("process_results") is not None:
                _custom_metric_names(config, fail)
            else:
                _metric_names(config, output_type, fail)
            _fewshot_sampler(config, fail)
            if output_type == "generate_until":
                GenerationScoring.from_config(config, fail)
    except (TaskError, TaskConfigError) as exc:
        return _reason(str(exc)), uses_code
    return "ok", uses_code


def _reason(message: str) -> str:
    """The failure with file-specific parts dropped, so failures can be counted."""
    text = message.split(": ", 1)[-1] if message.startswith("/") else message
    for marker in ("field '", "key '"):
        if marker in text:
            text = text[text.index(marker):]
    text = re.sub(r"<function [^>]*>", "a !function", text.split(" on ")[0].split(" (relative")[0])
    if "not supported for" in text:
        text = text.split("metric ", 1)[-1]
    return text[:110]


def census(root: Path) -> dict[str, Any]:
    files = sorted(root.rglob("*.yaml"))
    cache: dict[Path, set[str]] = {}
    reasons: Counter[str] = Counter()
    code = 0
    for path in files:
        reason, uses_code = verdict(path, cache)
        reasons[reason] += 1
        code += reason == "ok" and uses_code
    groups = sum(n for r, n in reasons.items() if r == "group" or r.startswith("group refused"))
    tasks = len(files) - groups
    return {"configs": len(files), "groups": groups, "groups_ok": reasons["group"], "tasks": tasks, "ok": reasons["ok"],
            "ok_with_function": code, "reasons": reasons}


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise SystemExit("usage: lm_eval_census.py LM_EVAL_WHEEL_OR_TASKS_DIR")
    source = Path(argv[0])
    with tempfile.TemporaryDirectory() as tmp:
        if source.suffix == ".whl":
            with zipfile.ZipFile(source) as wheel:
                wheel.extractall(tmp, [n for n in wheel.namelist() if n.startswith("lm_eval/tasks/")])
            source = Path(tmp) / "lm_eval" / "tasks"
        result = census(source)
    ok, tasks = result["ok"], result["tasks"]
    print(f"{result['configs']} configs: {tasks} tasks, {result['groups']} groups "
          f"({result['groups_ok']} with an aggregate_metric_list we compute or none)")
    print(f"tasks that load offline given their data: {ok} ({100 * ok / tasks:.1f} %), "
          f"{result['ok_with_function']} of them with --trust-task-code")
    print("why the others do not (most common first):")
    for reason, n in result["reasons"].most_common(25):
        if reason not in ("ok", "group"):
            print(f"  {n:6d}  {reason}")


if __name__ == "__main__":
    main(sys.argv[1:])
