"""The part of a JSON schema that constrained decoding enforces exactly, and what it relaxes.

One pass shared by every backend: the structured probe sends the enforced schema to
llama.cpp (GBNF, `_gbnf`), xgrammar and OpenAI-compatible servers alike, and validates each
answer against the full schema afterwards. A keyword no grammar here can enforce is removed
and named in a `Relaxation` (keyword, where, why), so one such keyword relaxes that item
instead of ending the run. Equivalent rewrites keep the rest enforced: a list `type` becomes
one branch per type with the keywords that apply to it, keywords beside `anyOf`/`oneOf` move
into the branches and `allOf` parts into their parent, enum values that break a sibling
keyword are dropped, and a whole-number bound on a `number` becomes a digit rule.

Pure Python (no llama.cpp), so a probe can ask without loading a backend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, TypeGuard

from llmassay.backends._gbnf_pattern import Unsupported, safe_pattern

ANNOTATIONS = frozenset({
    "title", "description", "default", "examples", "$schema", "$id", "$comment", "$anchor", "readOnly",
    "writeOnly", "deprecated", "contentMediaType", "contentEncoding", "contentSchema", "$defs", "definitions",
})  # fmt: skip
BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
KEYWORDS_OF = {
    "number": (*BOUNDS, "multipleOf"),
    "integer": (*BOUNDS, "multipleOf"),
    "string": ("minLength", "maxLength", "pattern", "format"),
    "array": ("items", "prefixItems", "minItems", "maxItems", "uniqueItems", "contains", "minContains",
              "maxContains", "unevaluatedItems", "additionalItems"),
    "object": ("properties", "required", "additionalProperties", "patternProperties", "propertyNames",
               "minProperties", "maxProperties", "dependentRequired", "dependentSchemas", "dependencies",
               "unevaluatedProperties"),
    "boolean": (),
    "null": (),
}  # fmt: skip
TYPED = frozenset(k for keys in KEYWORDS_OF.values() for k in keys)
JSON_TYPES = ("object", "array", "string", "number", "boolean", "null")
# Keywords that constrain a value but that no grammar here enforces, with the reason shown.
UNENFORCEABLE = {
    "multipleOf": "a divisibility rule",
    "uniqueItems": "a rule across array items",
    "contains": "a rule across array items",
    "minContains": "a rule across array items",
    "maxContains": "a rule across array items",
    "unevaluatedItems": "depends on other keywords' matches",
    "minProperties": "a count over any keys",
    "maxProperties": "a count over any keys",
    "patternProperties": "keys by pattern",
    "propertyNames": "keys by schema",
    "dependentRequired": "a rule between keys",
    "dependentSchemas": "a rule between keys",
    "dependencies": "a rule between keys",
    "unevaluatedProperties": "depends on other keywords' matches",
    "not": "a negation",
    "if": "a conditional",
    "then": "a conditional",
    "else": "a conditional",
}
NO_OP = {("uniqueItems", False), ("minProperties", 0), ("minContains", 1)}
# Formats with a grammar: llama.cpp's converter knows the first ones, `_gbnf` adds patterns.
NATIVE_FORMATS = ("date", "time", "date-time", "uuid", "uuid1", "uuid2", "uuid3", "uuid4", "uuid5")
_YEAR, _LEAP = r"([1-9]\d{3}|0[1-9]\d{2}|00[1-9]\d|000[1-9])", r"(\d{2}(0[48]|[2468][048]|[13579][26])|(0[48]|[2468][048]|[13579][26])00)"
_DATE = (rf"({_YEAR}-((0[13578]|1[02])-(0[1-9]|[12]\d|3[01])|(0[469]|11)-(0[1-9]|[12]\d|30)|02-(0[1-9]|1\d|2[0-8]))"
         rf"|{_LEAP}-02-29)")
_TIME = r"([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{3})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)"  # llama.cpp's time rule
FORMAT_PATTERNS = {
    # calendar dates only (llama.cpp's own rules write 2023-02-31, which no validator accepts)
    "date": f"^{_DATE}$",
    "date-time": f"^{_DATE}T{_TIME}$",
    "email": r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$",
    "ipv4": r"^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$",
    "hostname": r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$",
}
# Whole-number bounds up to this size keep a number's digits exact as a float (see NumberBounds).
NUMBER_BOUND_LIMIT = 10**6
# llama.cpp refuses a grammar that repeats a rule (maxLength, maxItems) 1,500 times or more:
# "number of rules … exceeds sane defaults" (1,000 parses; tests/test_schema_subset.py).
MAX_REPEAT = 1000


@dataclass(frozen=True)
class Relaxation:
    """A keyword the grammar does not enforce at one place in the schema."""

    keyword: str
    path: str  # "" (the root), "line_items[].unit_price", "$defs.address.zip"
    reason: str

    def __str__(self) -> str:
        return f"keyword '{self.keyword}' at {where(self.path)}: {self.reason}"


@dataclass(frozen=True)
class Subset:
    schema: dict[str, Any]  # what constrained decoding enforces, exactly
    relaxed: tuple[Relaxation, ...]  # what the full schema asks beyond it


@dataclass(frozen=True)
class NumberBounds:
    """A `number`'s whole-number bounds. With no exponent, digits after the point capped
    near an exclusive bound (`_gbnf.number_range`) and |bounds| ≤ NUMBER_BOUND_LIMIT, every
    decimal the grammar admits is in range after float rounding too (1e-9 > half an ulp of 1e6)."""

    lo: int | None
    lo_exclusive: bool
    hi: int | None
    hi_exclusive: bool


def where(path: str) -> str:
    return f"'{path}'" if path else "the root"


def enforceable(schema: Any) -> Subset:
    """The enforced subset of `schema` (a parsed JSON schema) and the keywords it relaxes.
    Raises Unsupported only for what is not a schema at all."""
    walker = _Walker(schema)
    out = walker.walk(schema, "")
    for pointer, walked in walker.defs.items():
        _put(out, pointer, walked)
    for _ in walker.defs:  # llama.cpp's converter resolves no reference inside a root that is one
        if out.get("$ref") not in walker.defs:
            break
        out = {**{k: v for k, v in out.items() if k != "$ref"}, **walker.defs[out["$ref"]]}
    return Subset(out, tuple(walker.relaxed))


def integer_bounds(schema: dict[str, Any]) -> tuple[int | None, int | None]:
    """Inclusive integer bounds from minimum/maximum/exclusive* (draft 4 booleans too);
    Unsupported when no integer lies between them."""
    lo = hi = None
    if _number(schema.get("minimum")):
        lo = math.ceil(schema["minimum"]) + (1 if schema.get("exclusiveMinimum") is True else 0)
    if _number(schema.get("maximum")):
        hi = math.floor(schema["maximum"]) - (1 if schema.get("exclusiveMaximum") is True else 0)
    ex_lo, ex_hi = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if _number(ex_lo):
        lo = max(lo if lo is not None else -math.inf, math.floor(ex_lo) + 1)
    if _number(ex_hi):
        hi = min(hi if hi is not None else math.inf, math.ceil(ex_hi) - 1)
    if lo is not None and hi is not None and lo > hi:
        raise Unsupported(f"no integer lies between {lo} and {hi}")
    return lo, hi


def number_bounds(schema: dict[str, Any]) -> NumberBounds:
    """A `number`'s bounds as a digit rule can enforce them, or Unsupported saying why not."""
    lo: tuple[float, bool] | None = None  # (value, exclusive)
    hi: tuple[float, bool] | None = None
    for key in BOUNDS:
        value = schema.get(key)
        if not _number(value):
            continue  # absent, or a draft 4 boolean (read with its minimum/maximum)
        if not (float(value).is_integer() and abs(value) <= NUMBER_BOUND_LIMIT):
            raise Unsupported(f"the bound {value} is not a whole number of at most {NUMBER_BOUND_LIMIT:,}")
        exclusive = key.startswith("exclusive") or schema.get(f"exclusive{key[0].upper()}{key[1:]}") is True
        if key in ("minimum", "exclusiveMinimum"):
            if lo is None or value > lo[0] or (value == lo[0] and exclusive):
                lo = (value, exclusive)
        elif hi is None or value < hi[0] or (value == hi[0] and exclusive):
            hi = (value, exclusive)
    if lo is not None and hi is not None and (lo[0] > hi[0] or (lo[0] == hi[0] and (lo[1] or hi[1]))):
        raise Unsupported(f"no number lies between {lo[0]} and {hi[0]}")
    return NumberBounds(None if lo is None else int(lo[0]), bool(lo and lo[1]),
                        None if hi is None else int(hi[0]), bool(hi and hi[1]))


def _number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _Walker:
    def __init__(self, root: Any) -> None:
        self.root = root
        self.relaxed: list[Relaxation] = []
        self.defs: dict[str, Any] = {}  # "#/$defs/x" → its enforced subset, walked once
        self.inlining: set[str] = set()  # references being merged with keywords beside them

    def relax(self, schema: dict[str, Any], keys: Any, path: str, reason: str) -> None:
        for key in [k for k in keys if k in schema]:
            if not any(key == k and schema[key] == v for k, v in NO_OP):
                self.relaxed.append(Relaxation(key, path, reason))
            del schema[key]

    def walk(self, schema: Any, path: str) -> dict[str, Any]:
        if schema is True:
            schema = {}
        if not isinstance(schema, dict):
            raise Unsupported(f"{where(path)} is not a schema object: {str(schema)[:40]!r}")
        s = dict(schema)
        notes = {k: v for k, v in s.items() if k in ANNOTATIONS}
        if "$ref" in s:
            if not self.follow(s["$ref"]):
                self.relax(s, ["$ref"], path, f"{s['$ref']!r} is not a reference into this schema's $defs")
                return self.walk(s, path)  # the keywords beside it still hold
            siblings = [k for k in s if k != "$ref" and k not in ANNOTATIONS]
            if not siblings:
                return s
            merged = self._inline(s) if s["$ref"] not in self.inlining else None
            if merged is None:
                self.relax(s, siblings, path, "beside '$ref' sets what the reference also sets (or recurses)")
                return s
            self.inlining.add(s["$ref"])
            try:
                return self.walk(merged, path)
            finally:
                self.inlining.discard(s["$ref"])
        if "allOf" in s:
            parts = [self._inline(p) for p in s["allOf"]] if isinstance(s["allOf"], list) else [None]
            merged = _merge_all([{k: v for k, v in s.items() if k != "allOf"}, *parts])
            if merged is None:
                self.relax(s, ["allOf"], path, "its parts set the same keyword differently or use '$ref'")
            else:
                s = merged
        if "anyOf" in s and "oneOf" in s:
            self.relax(s, ["anyOf"], path, "beside 'oneOf' (the grammar follows one of them)")
        for key in ("oneOf", "anyOf"):
            if key in s:
                return self._union(s, key, notes, path)
        kind = s.get("type")
        if isinstance(kind, list) and len(kind) != 1:
            branches = [{k: v for k, v in s.items() if k not in TYPED or k in KEYWORDS_OF.get(t, ())} | {"type": t}
                        for t in kind]
            return {**notes, "anyOf": [self.walk(b, path) for b in branches]}
        if isinstance(kind, list):
            s["type"] = kind = kind[0]
        if "enum" in s or "const" in s:
            return self._values(s, notes, path)
        for key in [k for k in s if k in UNENFORCEABLE]:
            if key == "multipleOf" and kind == "integer" and s[key] == 1:
                del s[key]  # every integer
            else:
                self.relax(s, [key], path, f"{UNENFORCEABLE[key]}, which a grammar does not express")
        if kind is None:
            kind = _implied_type(s)
            if kind is None:
                self.relax(s, [k for k in s if k in TYPED], path, "no 'type' says which values it applies to")
                return {**notes, "anyOf": [{"type": t} for t in JSON_TYPES]}
            s["type"] = kind
        for key in [k for k in s if k in TYPED and k not in KEYWORDS_OF.get(kind, ())]:
            del s[key]  # applies to other types only: constrains nothing here
        check = getattr(self, f"_{kind}", None)
        if check is not None:
            check(s, path)
        return s

    # -- references and combinations ----------------------------------------------------
    def follow(self, ref: Any) -> bool:
        """Walk the `$defs` (or `definitions`) entry `ref` names, once; False when `ref`
        points anywhere else (another document, or inside a property)."""
        parts = ref[2:].split("/") if isinstance(ref, str) and ref.startswith("#/") else []
        if len(parts) != 2 or parts[0] not in ("$defs", "definitions"):
            return False
        target = self.root.get(parts[0], {}) if isinstance(self.root, dict) else {}
        if not isinstance(target, dict) or parts[1] not in target:
            return False
        if ref not in self.defs:
            self.defs[ref] = {}  # a recursive schema meets itself here: walked already
            self.defs[ref] = self.walk(target[parts[1]], ".".join(parts))
        return True

    def _inline(self, part: Any) -> Any:
        """An allOf part that only names a $defs entry, as that entry (so it can merge)."""
        if isinstance(part, dict) and "$ref" in part and self.follow(part["$ref"]):
            _, section, name = part["$ref"].split("/")
            rest = {k: v for k, v in part.items() if k != "$ref"}
            return _merge_all([self.root[section][name], rest])
        return part

    def _union(self, s: dict[str, Any], key: str, notes: dict[str, Any], path: str) -> dict[str, Any]:
        """anyOf/oneOf: the keywords beside it hold in every branch, so they move into each
        branch (A ∧ (B ∨ C) = (A ∧ B) ∨ (A ∧ C), also for exactly-one); where a branch sets
        one of them differently the combination is relaxed instead."""
        rest = {k: v for k, v in s.items() if k != key and k not in ANNOTATIONS}
        branches = [b for b in s[key] if b is not False]
        merged = [_merge_all([rest, self._inline(b)]) if rest else b for b in branches]
        if not branches or any(m is None for m in merged):
            self.relax(s, [key], path, "a branch sets a keyword beside it differently")
            return self.walk(s, path)
        return {**notes, key: [self.walk(m, (f"{path}." if path else "") + f"{key}[{i}]" if len(merged) > 1 else path)
                               for i, m in enumerate(merged)]}

    def _values(self, s: dict[str, Any], notes: dict[str, Any], path: str) -> dict[str, Any]:
        """enum/const: the grammar writes the listed values, so the keywords beside them are
        enforced by keeping only the values that satisfy them."""
        values = list(s["enum"]) if isinstance(s.get("enum"), list) else [s.get("const")]
        others = {k: v for k, v in s.items() if k not in ("enum", "const") and k not in ANNOTATIONS}
        if "enum" in s and "const" in s:
            others["const"] = s["const"]
        if others:
            values = [v for v in values if _satisfies(v, others, self.root)]
        if not values:
            self.relax(s, ["enum" if "enum" in s else "const"], path, "no listed value satisfies the keywords beside it")
            return self.walk({k: v for k, v in s.items() if k != "const"}, path)
        return {**notes, "enum": values}

    # -- per type -------------------------------------------------------------------------
    def _integer(self, s: dict[str, Any], path: str) -> None:
        try:
            integer_bounds(s)
        except Unsupported as exc:
            self.relax(s, BOUNDS, path, str(exc))

    def _number(self, s: dict[str, Any], path: str) -> None:
        for key in [k for k in BOUNDS if _number(s.get(k))]:  # a fractional bound alone is relaxed
            try:
                number_bounds({key: s[key]})
            except Unsupported as exc:
                self.relax(s, [key], path, str(exc))
        try:
            number_bounds(s)
        except Unsupported as exc:
            self.relax(s, BOUNDS, path, str(exc))

    def _string(self, s: dict[str, Any], path: str) -> None:
        if "pattern" in s:
            try:
                safe_pattern(s["pattern"])
            except Unsupported as exc:
                self.relax(s, ["pattern"], path, str(exc).removeprefix("keyword 'pattern': "))
        fmt = s.get("format")
        if "pattern" in s:
            self.relax(s, ["format"], path, "beside 'pattern' (the grammar follows the pattern)")
        elif fmt is not None and fmt not in NATIVE_FORMATS and fmt not in FORMAT_PATTERNS:
            known = ", ".join((*NATIVE_FORMATS[:4], *FORMAT_PATTERNS))
            self.relax(s, ["format"], path, f"'{fmt}' has no grammar (known: {known})")
        lengths = ["minLength", "maxLength"]
        if "pattern" in s or "format" in s:
            self.relax(s, lengths, path, f"beside '{'pattern' if 'pattern' in s else 'format'}' (put the length in the pattern)")
        else:
            self._counts(s, lengths, path)

    def _array(self, s: dict[str, Any], path: str) -> None:
        items, prefix = s.get("items"), s.get("prefixItems")
        if isinstance(items, list):  # draft 4-2019 tuples
            prefix, items = items, None
            del s["items"]
            s.pop("additionalItems", None)
        if prefix is not None and items not in (None, False):
            self.relax(s, ["prefixItems"], path, "beside 'items' (the grammar follows 'items' for every element)")
            prefix = None
        if prefix is not None:  # exactly the tuple: more or fewer elements are never written
            s.pop("items", None)
            s["prefixItems"] = [self.walk(p, f"{path}[{i}]") for i, p in enumerate(prefix)]
            n = len(prefix)
            self.relax(s, [k for k in ("minItems", "maxItems") if k in s and (s[k] > n if k == "minItems" else s[k] < n)],
                       path, f"the grammar writes the tuple's {n} items")
            s.pop("minItems", None), s.pop("maxItems", None)
            return
        if items is False:  # no element allowed
            s["maxItems"] = 0
        s.pop("items", None)
        if isinstance(items, dict) or "minItems" in s or "maxItems" in s:  # else: the generic array rule
            s["items"] = self.walk(items if isinstance(items, dict) else {}, f"{path}[]")
        self._counts(s, ["minItems", "maxItems"], path)

    def _object(self, s: dict[str, Any], path: str) -> None:
        extra = s.get("additionalProperties")
        if "properties" not in s and not s.get("required") and extra in (None, True):
            s.pop("required", None)
            return  # a free-form object: llama.cpp's generic object rule
        if "properties" not in s and extra is None:
            extra = s["additionalProperties"] = True  # without 'properties' any key is allowed
        props: dict[str, Any] = s["properties"] if isinstance(s.get("properties"), dict) else {}
        at = (lambda name: f"{path}.{name}") if path else (lambda name: name)
        banned = [name for name, p in props.items() if p is False]  # never written as a listed key
        if banned and extra not in (None, False):
            self.relaxed += [Relaxation("properties", at(name), "false, but the grammar may write it as an additional key")
                             for name in banned]
        s["properties"] = {name: self.walk(p, at(name)) for name, p in props.items() if p is not False}
        if isinstance(extra, dict):
            s["additionalProperties"] = self.walk(extra, at("*"))
        missing = [name for name in s.get("required", ()) if name not in s["properties"]]
        if missing and extra is False:
            self.relax(s, ["required"], path, f"names {missing}, which 'additionalProperties: false' forbids")
        for name in missing if extra is not False else ():  # the grammar writes listed keys only
            s["properties"][name] = s["additionalProperties"] if isinstance(extra, dict) else self.walk({}, at(name))

    def _counts(self, s: dict[str, Any], keys: list[str], path: str) -> None:
        lo, hi = (s.get(k) for k in keys)
        if isinstance(lo, int) and isinstance(hi, int) and lo > hi:
            self.relax(s, keys, path, f"no count lies between {lo} and {hi}")
        elif isinstance(hi, int) and hi > MAX_REPEAT:
            self.relax(s, keys[1:], path, f"more than {MAX_REPEAT} repetitions make too large a grammar")
        if isinstance(s.get(keys[0]), int) and s[keys[0]] > MAX_REPEAT:
            self.relax(s, keys[:1], path, f"more than {MAX_REPEAT} repetitions make too large a grammar")


def _implied_type(s: dict[str, Any]) -> str | None:
    """The type llama.cpp's converter assumes for an untyped schema from its keywords (the
    grammar then writes only that type: a subset of what the schema allows)."""
    for kind in ("object", "array", "string"):
        if any(k in s for k in KEYWORDS_OF[kind]):
            return kind
    return "number" if any(k in s for k in BOUNDS) else None


def _merge_all(parts: list[Any]) -> dict[str, Any] | None:
    """One schema that means all of `parts` together, or None where two parts set the same
    keyword differently (or a part is a reference, or not a schema)."""
    out: dict[str, Any] = {}
    for part in parts:
        part = {} if part is True else part
        if not isinstance(part, dict) or "$ref" in part:
            return None
        for key, value in part.items():
            if key not in out or out[key] == value or key in ANNOTATIONS:
                out.setdefault(key, value)
            elif key == "required" and isinstance(value, list):
                out[key] = list(dict.fromkeys([*out[key], *value]))
            elif key == "properties" and isinstance(value, dict) and isinstance(out[key], dict) and not (
                    out[key].keys() & value.keys()):
                out[key] = {**out[key], **value}
            elif key == "type" and sorted(map(str, (out[key], value))) == ["integer", "number"]:
                out[key] = "integer"
            else:
                return None
    return out


def _satisfies(value: Any, schema: dict[str, Any], root: Any) -> bool:
    """Whether `value` meets `schema` (a part of `root`, whose $defs it may name)."""
    import jsonschema

    whole = {**schema, **{k: root[k] for k in ("$defs", "definitions", "$schema") if isinstance(root, dict) and k in root}}
    try:
        cls = jsonschema.validators.validator_for(whole)
        return not any(cls(whole, format_checker=cls.FORMAT_CHECKER).iter_errors(value))
    except (jsonschema.exceptions.SchemaError, jsonschema.exceptions.RefResolutionError, TypeError, ValueError):
        return True  # a sibling the validator cannot read constrains nothing it can check


def _put(schema: dict[str, Any], pointer: str, value: Any) -> None:
    section, name = pointer[2:].split("/")
    schema[section] = {**schema.get(section, {}), name: value}
