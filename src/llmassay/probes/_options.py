"""A probe's options: one frozen dataclass per probe, read generically from `-P probe.key=value`.

Each field carries its help, its allowed values and an optional check in its metadata
(`option(...)`), so the command line, `llmassay probes`, validation and the resume key
are all derived from the one declaration: a new probe adds no flag and no parser.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from llmassay.types import LlmassayError


def option(
    default: Any,
    help: str,
    *,
    choices: tuple[Any, ...] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    check: Callable[[Any], None] | None = None,
) -> Any:
    """A dataclass field with what the CLI and `llmassay probes` need to know about it.

    `check(value)` may raise LlmassayError (or ValueError) with the reason; the error the
    user sees names the option as it is spelled on the command line.
    """
    meta = {"help": help, "choices": choices, "minimum": minimum, "maximum": maximum, "check": check}
    if isinstance(default, (list, dict, set)):
        raise TypeError("option defaults must be immutable (use a tuple)")
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class NoOptions:
    """The options of a probe that has none."""


@dataclass(frozen=True)
class OptionInfo:
    name: str
    type: str
    default: Any
    help: str
    choices: tuple[Any, ...] | None


def describe(options_cls: type) -> list[OptionInfo]:
    """Every option of a probe, for `llmassay probes` and the docs."""
    hints = typing.get_type_hints(options_cls)
    return [
        OptionInfo(f.name, _type_name(hints[f.name]), f.default, f.metadata.get("help", ""), f.metadata.get("choices"))
        for f in dataclasses.fields(options_cls)
    ]


def build_options(probe: str, options_cls: type, given: Mapping[str, Any]) -> Any:
    """`given` (strings from the command line, or Python values from the API) → a checked
    Options instance. Unknown names and bad values end in one line naming `-P probe.key`."""
    fields = {f.name: f for f in dataclasses.fields(options_cls)}
    hints = typing.get_type_hints(options_cls)
    values: dict[str, Any] = {}
    for key, raw in given.items():
        name = key.replace("-", "_")
        spelled = f"-P {probe}.{key}"
        if name not in fields:
            known = ", ".join(fields) or "none"
            raise LlmassayError(f"{spelled}: probe '{probe}' has no option '{key}' (its options: {known})")
        if raw is None:
            continue
        values[name] = _checked(spelled, fields[name], hints[name], raw)
    return options_cls(**values)


def options_dict(opts: Any) -> dict[str, Any]:
    """An Options instance as plain JSON values (tuples → lists): hashed and recorded."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(opts).items()}


def _checked(spelled: str, f: dataclasses.Field[Any], hint: Any, raw: Any) -> Any:
    value = _convert(spelled, hint, raw)
    meta = f.metadata
    if value is not None:
        choices = meta.get("choices")
        items = value if isinstance(value, tuple) else (value,)
        if choices is not None:
            bad = [v for v in items if v not in choices]
            if bad or (isinstance(value, tuple) and not value):
                shown = ", ".join(map(str, bad)) or "nothing given"
                raise LlmassayError(f"{spelled}: {shown}; choose from {', '.join(map(str, choices))}")
        low, high = meta.get("minimum"), meta.get("maximum")
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"from {low} to {high}" if low is not None and high is not None else (
                f">= {low}" if low is not None else f"<= {high}")
            raise LlmassayError(f"{spelled}: {value!r} must be {bounds}")
        check = meta.get("check")
        if check is not None:
            try:
                check(value)
            except (LlmassayError, ValueError) as exc:
                reason = re.sub(r"^--[\w-]+: ", "", str(exc))  # a check may name the old flag
                raise LlmassayError(f"{spelled}: {reason}") from None
    return value


def _convert(spelled: str, hint: Any, raw: Any) -> Any:
    """A command-line string or a Python value → the field's type, or a one-line error."""
    base, optional = _unwrap_optional(hint)
    if optional and (raw is None or (isinstance(raw, str) and raw.strip().lower() in ("", "none"))):
        return None
    if base is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off"):
            return False
        raise LlmassayError(f"{spelled}: {raw!r} is not true or false")
    if base is int:
        if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
            raise LlmassayError(f"{spelled}: {raw!r} is not an integer")
        try:
            return int(str(raw).strip()) if isinstance(raw, str) else int(raw)
        except (TypeError, ValueError):
            raise LlmassayError(f"{spelled}: {raw!r} is not an integer") from None
    if base is float:
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise LlmassayError(f"{spelled}: {raw!r} is not a number") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise LlmassayError(f"{spelled}: {raw!r} is not a finite number")
        return value
    if typing.get_origin(base) is tuple:
        parts = raw.split(",") if isinstance(raw, str) else list(raw)
        return tuple(dict.fromkeys(str(p).strip() for p in parts if str(p).strip()))
    if base is str:
        if not isinstance(raw, (str, int, float)) or isinstance(raw, bool):
            raise LlmassayError(f"{spelled}: {raw!r} is not text")
        return str(raw).strip()
    raise TypeError(f"unsupported option type {hint!r}")


def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0], len(args) < len(typing.get_args(hint))
    return hint, False


def _type_name(hint: Any) -> str:
    base, optional = _unwrap_optional(hint)
    if typing.get_origin(base) is tuple:
        name = "list"
    else:
        name = getattr(base, "__name__", str(base))
    return name + (" | none" if optional else "")
