"""lm-evaluation-harness task YAML semantics: `include:`, `!function`, splits, unknown keys.

A config lm-eval ships must load here as it does there. `include:` is resolved
recursively, relative to the including file, and the including file's keys win (lm-eval's
`load_yaml_config`). `!function module.name` names Python in the task's own directory: it
is imported only when the user passes `--trust-task-code` (the same idea as
`trust_remote_code`), because a task file is otherwise data.
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from llmassay.types import LlmassayError

TRUST_FLAG = "--trust-task-code"

# Keys read by the loader, and lm-eval keys that change nothing a score depends on.
SUPPORTED_KEYS = frozenset({
    "task", "task_alias", "tag", "group", "dataset_path", "dataset_name", "dataset_kwargs", "output_type",
    "training_split", "validation_split", "test_split", "fewshot_split", "fewshot_config", "num_fewshot",
    "process_docs", "doc_to_text", "doc_to_target", "doc_to_choice", "description", "target_delimiter",
    "fewshot_delimiter", "gen_prefix", "generation_kwargs", "metric_list", "filter_list", "metadata", "repeats",
    "json_schema", "fewshot_group", "process_results",
})
HARMLESS_KEYS = frozenset({"should_decontaminate", "doc_to_decontamination_query"})
FEWSHOT_CONFIG_KEYS = frozenset({"sampler", "split", "samples"})
GENERATION_KEYS = frozenset({"until", "max_gen_toks", "do_sample", "temperature"})
# What lm-eval's own task code imports beyond llmassay's core, by module: the packages the
# `lmeval` extra installs (pyproject.toml; a test keeps the two equal).
LMEVAL_EXTRA = {"sacrebleu": "sacrebleu", "rouge_score": "rouge-score", "datasets": "datasets"}
PIP_NAMES = {"sklearn": "scikit-learn", "yaml": "PyYAML", "PIL": "pillow"}  # module ≠ package


class TaskConfigError(LlmassayError):
    """A task config problem; the message names the file, line and key."""


@dataclass(frozen=True)
class FunctionRef:
    """A `!function module.name` tag, kept unimported until the user trusts the task's code."""

    dotted: str
    yaml_path: Path
    line: int

    def load(self, key: str, trusted: bool) -> Callable[..., Any]:
        where = f"{self.yaml_path}:{self.line}: field '{key}'"
        if not trusted:
            raise TaskConfigError(
                f"{where}: '!function {self.dotted}' runs Python from {self.yaml_path.parent}; "
                f"pass {TRUST_FLAG} to allow it"
            )
        module_name, _, name = self.dotted.rpartition(".")
        if not module_name or not name:
            raise TaskConfigError(f"{where}: '!function {self.dotted}' must be module.function")
        file = self.yaml_path.parent / f"{module_name.replace('.', '/')}.py"
        if not file.is_file():
            raise TaskConfigError(f"{where}: '!function {self.dotted}': no file {file}")
        module = _import_file(file)
        if not callable(getattr(module, name, None)):
            raise TaskConfigError(f"{where}: '!function {self.dotted}': {file.name} has no function '{name}'")
        return getattr(module, name)


_MODULES: dict[Path, Any] = {}


def _import_file(file: Path) -> Any:
    """One module object per file, so a task's helpers share their module state."""
    file = file.resolve()
    if file not in _MODULES:
        spec = importlib.util.spec_from_file_location(f"llmassay_task_code.{file.stem}_{abs(hash(file))}", file)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(file.parent))  # task helpers import their siblings (`from utils import ...`)
        stub = _datasets_stub()
        try:
            spec.loader.exec_module(module)
        except ModuleNotFoundError as exc:  # a package the task's code needs is not installed
            raise TaskConfigError(f"{file}: task code failed to import: {missing_package(exc.name or str(exc))}") from None
        except Exception as exc:  # the user's code: any failure is one line naming the file
            raise TaskConfigError(f"{file}: task code failed to import: {type(exc).__name__}: {exc}") from None
        finally:
            sys.path.remove(str(file.parent))
            if stub:
                sys.modules.pop("datasets", None)
        _MODULES[file] = module
    return _MODULES[file]


def missing_package(module: str) -> str:
    """What to install for a module task code imports: the `lmeval` extra where it has it."""
    top = module.split(".")[0]
    if top in LMEVAL_EXTRA:
        return f"needs the package '{LMEVAL_EXTRA[top]}' (module {top}): pip install 'llmassay[lmeval]'"
    package = PIP_NAMES.get(top, top)
    return f"needs the package '{package}' (module {top}), which the lmeval extra does not install: pip install {package}"


def _datasets_stub() -> bool:
    """lm-eval's task helpers `import datasets` for type hints (`datasets.Dataset`); where
    the library is not installed they get a stand-in whose `Dataset` is our `DocList`."""
    if "datasets" in sys.modules or importlib.util.find_spec("datasets") is not None:
        return False
    from types import ModuleType

    from llmassay.tasks.doclist import DocList

    stub = ModuleType("datasets")
    stub.Dataset = DocList  # type: ignore[attr-defined]
    sys.modules["datasets"] = stub
    return True


def _loader_for(path: Path) -> type[yaml.SafeLoader]:
    class Loader(yaml.SafeLoader):
        pass

    def function(loader: yaml.SafeLoader, node: yaml.Node) -> FunctionRef:
        return FunctionRef(str(loader.construct_scalar(node)), path, node.start_mark.line + 1)  # type: ignore[arg-type]

    Loader.add_constructor("!function", function)
    return Loader


def read_config(path: Path, _chain: tuple[Path, ...] = ()) -> tuple[dict[str, Any], dict[str, str]]:
    """The config with its includes merged, and where each key was set ("file:line")."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TaskConfigError(f"{path}: not valid UTF-8 (byte {exc.start})") from None
    except OSError as exc:
        raise TaskConfigError(f"{path}: cannot read ({exc.strerror})") from None
    loader = _loader_for(path)
    try:
        node = yaml.compose(text, Loader=loader)
        config = yaml.load(text, Loader=loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise TaskConfigError(f"{path}{line}: invalid YAML: {(exc.problem or str(exc)).strip()}") from None
    except yaml.YAMLError as exc:
        raise TaskConfigError(f"{path}: invalid YAML: {str(exc).splitlines()[0]}") from None
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise TaskConfigError(f"{path}: invalid YAML: {reason}") from None
    if not isinstance(config, dict):
        raise TaskConfigError(f"{path}:1: a task file must be a mapping of keys (task, doc_to_text, ...)")
    lines: dict[str, str] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, _ in node.value:
            lines[str(key_node.value)] = f"{path}:{key_node.start_mark.line + 1}"
    if "include" not in config:
        return config, lines
    return _with_includes(path, config, lines, _chain + (path.resolve(),))


def _with_includes(
    path: Path, config: dict[str, Any], lines: dict[str, str], chain: tuple[Path, ...]
) -> tuple[dict[str, Any], dict[str, str]]:
    where = lines.get("include", str(path))
    includes = config.pop("include")
    if isinstance(includes, str):
        includes = [includes]
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise TaskConfigError(f"{where}: field 'include': must be a file name or a list of file names")
    merged: dict[str, Any] = {}
    merged_lines: dict[str, str] = {}
    for name in includes:
        target = Path(name) if Path(name).is_absolute() else path.parent / name
        if not target.is_file():
            raise TaskConfigError(f"{where}: field 'include': '{name}' not found (relative to {path.parent})")
        if target.resolve() in chain:
            raise TaskConfigError(f"{where}: field 'include': '{name}' includes itself (a cycle)")
        sub, sub_lines = read_config(target, chain)
        merged.update(sub)
        merged_lines.update(sub_lines)
    lines.pop("include", None)
    merged.update(config)  # the including file's keys win
    merged_lines.update(lines)
    return merged, merged_lines


def resolve_functions(config: dict[str, Any], trusted: bool) -> dict[str, Any]:
    """Every `!function` in the config, imported (trusted) or refused naming the flag."""

    def walk(value: Any, key: str, seen: frozenset[int]) -> Any:
        if isinstance(value, FunctionRef):
            return value.load(key, trusted)
        if id(value) in seen:  # a self-referencing YAML anchor: left as it is, for the field checks to refuse
            return value
        if isinstance(value, dict):
            inner = seen | {id(value)}
            return {k: walk(v, f"{key}.{k}" if key else str(k), inner) for k, v in value.items()}
        if isinstance(value, list):
            inner = seen | {id(value)}
            return [walk(v, key, inner) for v in value]
        return value

    return walk(config, "", frozenset())


def warn_unsupported(path: Path, config: dict[str, Any], lines: dict[str, str]) -> list[str]:
    """Name every key we do not act on, one line each, so nothing is dropped silently."""
    said = []
    for key in config:
        if key not in SUPPORTED_KEYS and key not in HARMLESS_KEYS:
            said.append(f"{lines.get(key, path)}: key '{key}' is not supported and is ignored")
    fewshot = config.get("fewshot_config")
    if isinstance(fewshot, dict):
        said += [f"{lines.get('fewshot_config', path)}: key 'fewshot_config.{k}' is not supported and is ignored"
                 for k in fewshot if k not in FEWSHOT_CONFIG_KEYS]
    gen = config.get("generation_kwargs")
    if isinstance(gen, dict):
        said += [f"{lines.get('generation_kwargs', path)}: key 'generation_kwargs.{k}' is not supported and is ignored"
                 for k in gen if k not in GENERATION_KEYS]
        if gen.get("do_sample") or gen.get("temperature"):
            said.append(f"{lines.get('generation_kwargs', path)}: sampling settings in generation_kwargs are ignored; "
                        "use --temperature")
    for line in said:
        warnings.warn(line, TaskConfigWarning, stacklevel=3)
    return said


class TaskConfigWarning(UserWarning):
    """A task config key that is read but not acted on."""


# -- splits, as lm-eval chooses them ----------------------------------------------------
def eval_split(config: dict[str, Any]) -> str:
    """`test_split`, else `validation_split` (lm-eval's `eval_docs`); `train` for files that name neither."""
    for key in ("test_split", "validation_split"):
        if config.get(key) is not None:
            return str(config[key])
    return "train"


def fewshot_split(config: dict[str, Any]) -> str:
    """`fewshot_split` (or `fewshot_config.split`), else training, validation, test split."""
    fewshot = config["fewshot_config"] if isinstance(config.get("fewshot_config"), dict) else {}
    for value in (config.get("fewshot_split"), fewshot.get("split"), config.get("training_split"),
                  config.get("validation_split"), config.get("test_split")):
        if value is not None:
            return str(value)
    return eval_split(config)


def excludes_eval_doc(config: dict[str, Any]) -> bool:
    """lm-eval leaves the item out of its own shots only when the few-shot split is the test split."""
    fewshot = config["fewshot_config"] if isinstance(config.get("fewshot_config"), dict) else {}
    split = config.get("fewshot_split", fewshot.get("split"))
    return split == config.get("test_split")
