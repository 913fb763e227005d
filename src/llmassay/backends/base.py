"""The Backend protocol and the `kind/name` registry the CLI resolves models with.

A backend knows nothing about tasks or probes: it answers requests. Keeping this surface
to three calls (as lm-eval does) is what lets one engine cache and batch for every probe.

Writing a backend (the contract a plug-in implements)
----------------------------------------------------
`--model KIND/NAME --model-args k=v,...` calls the factory registered for KIND as
`factory(NAME, k=v, ...)`: a class or a function, whose keyword annotations (`int`, `float`,
`bool`, optionally `| None`) are checked before it is called, so `n_ctx=abc` fails in one
line naming the argument. The object it returns must have

- `name: str` — shown in tables and errors (e.g. "toy/x").
- `generate(reqs: Sequence[GenerateRequest]) -> list[Generation]` — one answer per request,
  in order. A request has a `prompt` (raw text) or `messages` ((role, content) pairs),
  `max_tokens`, `stop`, `temperature`, `seed`, and optionally `json_schema` / `grammar`
  (raise `LlmassayError` if unsupported). `Generation(text, n_prompt_tokens, n_tokens,
  finish_reason, latency_s)`.
- `loglikelihood(reqs: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]` —
  log P(continuation | context) per request: `LoglikelihoodResult(logprob, is_greedy,
  n_tokens, n_context_tokens)`. A backend that cannot score raises `LlmassayError` (tasks
  of type multiple_choice then fail in one line; generate_until tasks still run).
- `tokenize(text: str) -> list[int]` — token ids (any stable ids: some probes count tokens).
- `fingerprint() -> dict` — JSON-serialisable identity of everything that changes an answer
  (model name and revision or file hash, decoding-relevant settings, library versions).
  It is part of every request-cache key: answers cached for one fingerprint are never
  served to another. Never put a secret (an API key) in it.

Errors meant for the user are `llmassay.types.LlmassayError` with a one-line message
(a refused connection, a missing file); anything else is treated as a bug. Optional
hooks, used when present: `generate(reqs, on_answer=None)` / `loglikelihood(...,
on_answer=None)` calling `on_answer(i, answer)` as each answer is ready (it is cached at
once, so an interrupted run keeps it); `request_order(req)` (sort key for requests, e.g.
by text so shared prefixes run back to back); `reset()` (forget state carried between
calls); `close()`; `tokens_evaluated` (int counter); `token_stats`,
`loglikelihood_tokens` and `rolling_tokens` (see llamacpp.py; the probes that need them
say so in one line when absent); `generate_stream(req)` (timing, efficiency probe);
`chat_prompt(text)` (judge prompts for chat models); `chat_model() -> bool` (an
instruction-tuned model: `chat_template=auto` then sends zero-shot prompts as chat
`messages`, as a chat-only API needs); `model_size() -> dict` (`parameters`: int, `architecture`:
the family, `quantisation`, `name`, `source`: see model_size.ModelSize; a field not known is
None) — recorded in the results file's `model.size`, read by the models × metrics matrix to
fit trends against log(parameters) and to say when families or quantisations differ.

A package registers KIND with an entry point (pip-installed, nothing else to configure):

    [project.entry-points."llmassay.backends"]
    toy = "toybackend:ToyBackend"

A plug-in cannot take a built-in KIND (llamacpp, hf, openai): such a clash, two packages
declaring the same KIND, or a plug-in that fails to import is a one-line error naming the
package, raised only when that KIND is asked for. `register_backend` does the same from
code, in-process (it wins over an entry point).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import re
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from llmassay.types import (
    GenerateRequest,
    Generation,
    LlmassayError,
    LoglikelihoodRequest,
    LoglikelihoodResult,
)


@runtime_checkable
class Backend(Protocol):
    name: str

    def loglikelihood(self, reqs: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]: ...

    def generate(self, reqs: Sequence[GenerateRequest]) -> list[Generation]: ...

    def tokenize(self, text: str) -> list[int]: ...

    def fingerprint(self) -> dict[str, Any]: ...


BackendFactory = Callable[..., Backend]

ENTRY_POINT_GROUP = "llmassay.backends"

_BUILTIN: dict[str, str] = {
    "llamacpp": "llmassay.backends.llamacpp:LlamaCppBackend",
    "hf": "llmassay.backends.hf:HFBackend",
    "openai": "llmassay.backends.openai_compat:OpenAIBackend",
}
# kind → "module:factory"; imported lazily so `llamacpp/` never pays for torch. Built-ins
# plus `register_backend`; entry points are read on each lookup (backend_targets).
_REGISTRY: dict[str, str] = dict(_BUILTIN)


@dataclass(frozen=True)
class PluginTarget:
    """Where a plug-in KIND comes from: its "module:attr" and the package that declares it."""

    target: str
    package: str
    clash: str | None = None  # why KIND cannot be used (a built-in's name, declared twice)


def _declared_backends() -> Iterator[tuple[str, importlib.metadata.EntryPoint]]:
    """(package, entry point) for each installed package's `llmassay.backends` entries.
    Read per package: `importlib.metadata.entry_points()` keeps one entry per name and
    would hide a second package declaring the same KIND."""
    seen: set[str] = set()
    for dist in importlib.metadata.distributions():
        if f"[{ENTRY_POINT_GROUP}]" not in (dist.read_text("entry_points.txt") or ""):
            continue  # cheap: parsing every package's METADATA would cost ~50 ms a lookup
        name = dist.metadata["Name"] or "?"
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:  # the same package twice on sys.path: the first wins, as for imports
            continue
        seen.add(key)
        for ep in dist.entry_points:
            if ep.group == ENTRY_POINT_GROUP:
                yield f"{name} {dist.version}", ep


def plugin_targets() -> dict[str, PluginTarget]:
    """Every KIND declared in the `llmassay.backends` entry-point group, with its package;
    a KIND that clashes carries the reason instead of being dropped silently."""
    found: dict[str, PluginTarget] = {}
    for package, ep in _declared_backends():
        if ep.name in _BUILTIN:
            clash = (f"backend '{ep.name}' is built into llmassay, and the plug-in package {package} declares it "
                     f"too (entry point {ep.name} = {ep.value}): rename the plug-in's entry point or uninstall it")
            found[ep.name] = PluginTarget(ep.value, package, clash)
        elif ep.name in found:
            first = found[ep.name]
            clash = (f"backend '{ep.name}' is declared by two plug-in packages, {first.package} and {package}: "
                     "uninstall one")
            found[ep.name] = PluginTarget(ep.value, package, first.clash or clash)
        else:
            found[ep.name] = PluginTarget(ep.value, package)
    return found


def backend_targets(plugins: dict[str, PluginTarget] | None = None) -> dict[str, str]:
    """Every usable KIND → "module:attr": built-ins, entry points, then `register_backend`."""
    plugins = plugin_targets() if plugins is None else plugins
    usable = {k: p.target for k, p in plugins.items() if p.clash is None and k not in _REGISTRY}
    return {**_REGISTRY, **usable}


def _registered_in_code(kind: str) -> bool:
    """`register_backend` (or a test) put KIND in the registry itself: it wins over entry points."""
    return kind in _REGISTRY and _REGISTRY[kind] != _BUILTIN.get(kind)


def optional_method(backend: Any, method: str, what: str | None = None) -> Callable[..., Any]:
    """A backend's optional capability (token_stats, loglikelihood_tokens), or one line naming
    what this backend cannot do, not an AttributeError from deep in a run. The engine and
    the Ray workers both ask through here."""
    compute = getattr(backend, method, None)
    if not callable(compute):
        raise LlmassayError(f"{getattr(backend, 'name', 'this backend')}: {what or method} is not supported by this "
                            "backend (llamacpp/ and hf/ give it)")
    return compute


def register_backend(kind: str, target: str) -> None:
    """Register a backend class as "module:attr" under a `kind/` prefix."""
    _REGISTRY[kind] = target


def parse_model_args(text: str | None) -> dict[str, Any]:
    """`k=v,k2=v2` → dict, with ints, floats and booleans converted (lm-eval style)."""
    out: dict[str, Any] = {}
    if not text:
        return out
    for part in text.split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise LlmassayError(f"--model-args: '{part}' is not of the form key=value")
        key, value = part.split("=", 1)
        out[key.strip()] = _convert(value.strip())
    return out


def _convert(value: str) -> Any:
    low = value.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def split_model_spec(spec: str) -> tuple[str, str]:
    """`KIND/NAME` → (KIND, NAME), or one line: no slash, an unknown KIND, or a plug-in KIND
    that clashes with a built-in or another plug-in (which one is meant is unclear)."""
    plugins = plugin_targets()
    known = backend_targets(plugins)
    if "/" not in spec:
        raise LlmassayError(f"--model '{spec}': expected KIND/NAME with KIND one of {', '.join(sorted(known))}")
    kind, name = spec.split("/", 1)
    clash = plugins[kind].clash if kind in plugins else None
    if clash and not _registered_in_code(kind):
        raise LlmassayError(f"--model '{spec}': {clash}")
    if kind not in known:
        raise LlmassayError(f"--model '{spec}': unknown backend '{kind}' (known: {', '.join(sorted(known))})")
    return kind, name


def backend_factory(spec: str) -> BackendFactory:
    """The class registered for `spec`'s kind, imported but not instantiated (a Ray driver
    reads class-level hooks such as `request_order` from it without loading a model)."""
    kind, _ = split_model_spec(spec)
    if kind not in _REGISTRY:
        return _import_plugin(kind, plugin_targets()[kind])
    module_name, attr = _REGISTRY[kind].split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        extra = {"hf": "hf", "openai": ""}.get(kind, "")
        hint = f" (install the [{extra}] extra)" if extra else ""
        raise LlmassayError(f"backend '{kind}' needs a missing package: {exc.name}{hint}") from exc
    return getattr(module, attr)


def _import_plugin(kind: str, plugin: PluginTarget) -> BackendFactory:
    """A third-party module may fail in any way while importing; each is one line naming
    the package, never a traceback from inside it."""
    module_name, _, attr = plugin.target.partition(":")
    where = f"backend '{kind}' (plug-in package {plugin.package}, entry point {kind} = {plugin.target})"
    try:
        factory: Any = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - third-party import code: any failure is the plug-in's
        raise LlmassayError(f"{where} cannot be imported: {type(exc).__name__}: {exc}") from exc
    for part in attr.split(".") if attr else ():
        factory = getattr(factory, part, None)
    if not attr or not callable(factory):
        raise LlmassayError(f"{where}: module {module_name} has no callable {attr or '(no :attr given)'}")
    return factory


def load_backend(spec: str, **model_args: Any) -> Backend:
    """`llamacpp/smollm2-135m` → a ready backend instance."""
    kind, name = split_model_spec(spec)
    factory = backend_factory(spec)
    check_arg_types(kind, factory, model_args)
    try:
        backend = factory(name, **model_args)
    except TypeError as exc:
        raise LlmassayError(f"--model-args for '{kind}': {exc}") from exc
    except ValueError as exc:  # n_ctx=abc, timeout=soon; a file that is not a model
        raise LlmassayError(f"--model '{spec}': cannot load ({exc})") from None
    missing = missing_members(backend)
    if missing:
        raise LlmassayError(f"--model '{spec}': {type(backend).__name__} from {factory.__module__} is not a backend "
                            f"(lacks {', '.join(missing)}; see llmassay.backends.base)")
    return backend


def missing_members(backend: Any) -> list[str]:
    """The Backend protocol's members an object lacks (methods must be callable)."""
    methods = ("generate", "loglikelihood", "tokenize", "fingerprint")
    return ([] if isinstance(getattr(backend, "name", None), str) else ["name"]) + [
        m for m in methods if not callable(getattr(backend, m, None))]


def check_arg_types(kind: str, factory: Any, model_args: dict[str, Any]) -> None:
    """`n_ctx=abc` names n_ctx: each model arg is checked against the number or boolean the
    backend's constructor declares, before the backend (and its model) is touched."""
    try:
        hints = typing.get_type_hints(factory.__init__ if inspect.isclass(factory) else factory)
    except Exception:  # annotations a backend cannot resolve: leave the check to it
        return
    for key, value in model_args.items():
        hint = hints.get(key)
        union = typing.get_origin(hint) in (typing.Union, types.UnionType)
        allowed = set(typing.get_args(hint)) if union else {hint}
        if value is None and type(None) in allowed:
            continue
        if bool in allowed:
            ok, what = isinstance(value, bool), "true or false"
        elif int in allowed:
            ok, what = isinstance(value, int) and not isinstance(value, bool), "an integer"
        elif float in allowed:
            ok, what = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
        else:
            continue
        if not ok:
            raise LlmassayError(f"--model-args {key}={value}: {kind} expects {what} for {key}")
