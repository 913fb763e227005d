"""Parallel text: the same content in several languages, one item per line.

A line maps language codes to the same sentence (`{"id": …, "en": …, "de": …}`); a line
need not hold every language, and a language is compared with English on the lines that
hold both. Two sources ship: UDHR articles (running sentences, see data/ATTRIBUTION.md) and
country names from pycountry's ISO 3166 translations (short names, many items).
"""

from __future__ import annotations

import gettext
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from llmassay.jsonlines import json_lines
from llmassay.types import LlmassayError

ENGLISH = "en"
# Languages written without spaces between words: tokens per word means nothing there.
NO_WORD_SPACES = frozenset({"zh", "ja", "th", "lo", "km", "my"})
# Country-name languages: the bundled UDHR languages that pycountry translates.
NAME_LANGUAGES = ("de", "fr", "es", "it", "pt", "nl", "ru", "pl", "zh_CN", "ja", "ar", "ko", "tr", "el", "vi", "hi")


@dataclass
class ParallelText:
    """Items × languages: `items[i][lang]` is item i written in `lang`."""

    name: str
    items: list[dict[str, str]]
    ids: list[str] = field(default_factory=list)

    @property
    def languages(self) -> list[str]:
        seen: dict[str, None] = {}
        for item in self.items:
            seen.update(dict.fromkeys(item))
        return [ENGLISH] + sorted(lang for lang in seen if lang != ENGLISH)


def read_parallel(path: str | Path) -> ParallelText:
    """A user's JSONL parallel file; any malformed line is a one-line error naming it."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise LlmassayError(f"--parallel {path}: cannot read ({exc.__class__.__name__}: {exc})") from exc
    items, ids = [], []
    for where, number, record in json_lines("\n".join(lines), path):
        if not isinstance(record, dict):
            raise LlmassayError(f"{where}: expected an object mapping language codes to text")
        item_id = str(record.pop("id", f"line{number}"))
        for lang, text in record.items():
            if not isinstance(text, str) or not text.strip():
                raise LlmassayError(f"{where}: field '{lang}' must be a non-empty string")
        if ENGLISH not in record:
            raise LlmassayError(f"{where}: no '{ENGLISH}' field (the premium is measured against English)")
        if len(record) < 2:
            raise LlmassayError(f"{where}: only English; a line needs at least one other language")
        items.append(record)
        ids.append(item_id)
    if not items:
        raise LlmassayError(f"--parallel {path}: no lines")
    return ParallelText(path.name, items, ids)


def bundled_parallel() -> ParallelText:
    """UDHR articles 1, 3, 4, 5 (public text; see data/ATTRIBUTION.md)."""
    path = resources.files("llmassay.tokens") / "data" / "udhr.jsonl"
    with resources.as_file(path) as real:
        text = read_parallel(real)
    text.name = "udhr"
    return text


def country_names(languages: tuple[str, ...] = NAME_LANGUAGES) -> ParallelText:
    """Country names in English and their ISO 3166 translations shipped with pycountry:
    a second, larger source (names, not running text; tokenizers often know them whole)."""
    try:
        import pycountry
    except ImportError as exc:
        raise LlmassayError("country names need pycountry: pip install 'llmassay[tokens]'") from exc
    translators = {}
    for lang in languages:
        try:
            translators[lang.split("_")[0]] = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[lang])
        except OSError:
            continue  # pycountry has no catalogue for it
    items, ids = [], []
    for country in sorted(pycountry.countries, key=lambda c: c.alpha_2):
        item = {ENGLISH: country.name}
        for lang, t in translators.items():
            local = t.gettext(country.name)
            if local != country.name:  # untranslated entries would count English twice
                item[lang] = local
        if len(item) > 1:
            items.append(item)
            ids.append(country.alpha_2)
    return ParallelText("country_names", items, ids)
