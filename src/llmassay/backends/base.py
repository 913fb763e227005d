"""The Backend protocol and the `kind/name` registry the CLI resolves models with.

A backend knows nothing about tasks or probes: it answers requests. Keeping this surface
to three calls (as lm-eval does) is what lets one engine cache and batch for every probe.
"""

from __future__ import annotations

import importlib
import inspect
import types
import typing
from collections.abc import Callable, Sequence
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

# kind → "module:factory"; imported lazily so `llamacpp/` never pays for torch.
_REGISTRY: dict[str, str] = {
    "llamacpp": "llmassay.backends.llamacpp:LlamaCppBackend",
    "hf": "llmassay.backends.hf:HFBackend",
    "openai": "llmassay.backends.openai_compat:OpenAIBackend",
}


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
    if "/" not in spec:
        raise LlmassayError(
            f"--model '{spec}': expected KIND/NAME with KIND one of {', '.join(sorted(_REGISTRY))}"
        )
    kind, name = spec.split("/", 1)
    if kind not in _REGISTRY:
        raise LlmassayError(
            f"--model '{spec}': unknown backend '{kind}' (known: {', '.join(sorted(_REGISTRY))})"
        )
    return kind, name


def backend_factory(spec: str) -> BackendFactory:
    """The class registered for `spec`'s kind, imported but not instantiated (a Ray driver
    reads class-level hooks such as `request_order` from it without loading a model)."""
    kind, _ = split_model_spec(spec)
    module_name, attr = _REGISTRY[kind].split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        extra = {"hf": "hf", "openai": ""}.get(kind, "")
        hint = f" (install the [{extra}] extra)" if extra else ""
        raise LlmassayError(f"backend '{kind}' needs a missing package: {exc.name}{hint}") from exc
    return getattr(module, attr)


def load_backend(spec: str, **model_args: Any) -> Backend:
    """`llamacpp/smollm2-135m` → a ready backend instance."""
    kind, name = split_model_spec(spec)
    factory = backend_factory(spec)
    check_arg_types(kind, factory, model_args)
    try:
        return factory(name, **model_args)
    except TypeError as exc:
        raise LlmassayError(f"--model-args for '{kind}': {exc}") from exc
    except ValueError as exc:  # n_ctx=abc, timeout=soon; a file that is not a model
        raise LlmassayError(f"--model '{spec}': cannot load ({exc})") from None


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
