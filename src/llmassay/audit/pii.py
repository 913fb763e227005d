"""Personal data in a corpus: e-mail addresses, phone numbers, IP addresses, payment card
numbers (Luhn) and IBANs (ISO 13616 mod-97), found, counted and optionally redacted.

Candidates come from regular expressions; each is then validated by a library that knows
the format: `phonenumbers` (Google's libphonenumber) for phones, `python-stdnum` for the
Luhn and IBAN checksums, `ipaddress` for IPs. A card number must also carry a known
issuer prefix, which removes most of the 1-in-10 random digit runs that pass Luhn.
Candidates are not taken greedily: a card is the longest valid span of whole digit groups
and an IBAN is cut at its country's length, so the token after one cannot make it fail.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from llmassay.types import LlmassayError

PII_TYPES = ("email", "iban", "credit_card", "ip_address", "phone")  # also the overlap priority
MAX_EXAMPLES_PER_TYPE = 20

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,24}(?![\w-])")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.]*\d)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
# A run of digit groups (separated by one space or hyphen): the card is searched for inside
# it, at group boundaries, so an expiry date or a reference after the number does not hide it.
_DIGIT_RUN = re.compile(r"(?<![\d-])\d+(?:[ -]\d+)*(?![\d-])")
_CARD_DIGITS = (13, 19)
_CARD_GROUP = (3, 6)  # digits per printed group when a card is written in groups
_IBAN_START = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}")
# Dotted version numbers ("version 1.3.0.1", RCS ",v 1.10.2.3") are valid IPv4 syntax: a
# candidate right after such a word is not an address (found on Debian copyright files).
_VERSION_BEFORE = re.compile(r"(?:\bv|\bver\.?|version|release|revision|rev\.?)\s*$", re.IGNORECASE)
# Issuer identification prefixes (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro).
_CARD_PREFIX = re.compile(r"^(?:4|5[1-5]|2[2-7]|3[47]|6011|65|64[4-9]|35|30[0-5]|36|38|62|5018|5020|5038|6304)")


@dataclass(frozen=True)
class Finding:
    type: str
    start: int  # character offsets in the document's text
    end: int


def luhn_valid(digits: str) -> bool:
    from stdnum import luhn

    return luhn.is_valid(digits)


def iban_valid(text: str) -> bool:
    from stdnum import iban

    return iban.is_valid(text)


@functools.lru_cache(maxsize=None)
def _iban_pattern(country: str) -> re.Pattern[str] | None:
    """The country's IBAN with its registry length (python-stdnum's copy of the SWIFT IBAN
    registry), single spaces allowed, ending at a word boundary; None for no IBAN country.
    Cutting at the country's length is what lets a following " 00 2024" or " BY" stay out."""
    from stdnum import numdb

    bban = numdb.get("iban").info(country)[0][1].get("bban")
    if not bban:
        return None
    length = 4 + sum(int(n) for n in re.findall(r"(\d+)!", bban))
    return re.compile(rf"[A-Z]{{2}}\d{{2}}(?: ?[A-Z0-9]){{{length - 4}}}(?![A-Za-z0-9])")


def _groups(run: str, offset: int) -> list[tuple[int, int]]:
    """(start, end) of each digit group in a run, as offsets in the document."""
    return [(offset + m.start(), offset + m.end()) for m in re.finditer(r"\d+", run)]


def _printed_group(group: tuple[int, int]) -> bool:
    return _CARD_GROUP[0] <= group[1] - group[0] <= _CARD_GROUP[1]


def _card_in(text: str, groups: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Card numbers among consecutive digit groups: from each group on, the longest span of
    whole groups with 13-19 digits, an issuer prefix and a valid Luhn checksum; the search
    resumes after each card found. A span is one group or groups of 3-6 digits, as cards are
    printed (4-4-4-4, 4-6-5, 4-6-4, 4-4-4-4-3), so a table of small numbers does not chain
    into card-length candidates."""
    found, i = [], 0
    while i < len(groups):
        end = None
        digits = ""
        spans = []
        for j in range(i, len(groups)):
            if j > i and not (_printed_group(groups[i]) and _printed_group(groups[j])):
                break  # (the groups between were checked on the way)
            digits += text[groups[j][0] : groups[j][1]]
            if len(digits) > _CARD_DIGITS[1]:
                break
            if len(digits) >= _CARD_DIGITS[0]:
                spans.append((j, digits))
        for j, candidate in reversed(spans):
            if _CARD_PREFIX.match(candidate) and luhn_valid(candidate):
                end = j
                break
        if end is None:
            i += 1
            continue
        found.append((groups[i][0], groups[end][1]))
        i = end + 1
    return found


class PiiDetector:
    """All detectors over one text; overlapping findings keep the higher-priority type."""

    def __init__(self, phone_region: str = "US", presidio_model: str | None = None) -> None:
        try:
            import phonenumbers  # noqa: F401
            import stdnum  # noqa: F401
        except ImportError:
            raise LlmassayError(
                "audit pii needs phonenumbers and python-stdnum: pip install 'llmassay[audit]'"
            ) from None
        self.phone_region = phone_region.upper()
        self._presidio = None
        if presidio_model:
            from llmassay.audit.pii_presidio import presidio_finder

            self._presidio = presidio_finder(presidio_model)

    def find(self, text: str) -> list[Finding]:
        found = [*self._emails(text), *self._ibans(text), *self._cards(text), *self._ips(text), *self._phones(text)]
        if self._presidio is not None:
            found += [Finding(t, start, end) for t, start, end in self._presidio(text)]
        rank = {t: i for i, t in enumerate(PII_TYPES)}
        found.sort(key=lambda f: (rank.get(f.type, len(PII_TYPES)), f.start))
        kept: list[Finding] = []
        for f in found:
            if all(f.end <= k.start or f.start >= k.end for k in kept):
                kept.append(f)
        return sorted(kept, key=lambda f: f.start)

    def _emails(self, text: str) -> list[Finding]:
        if "@" not in text:
            return []
        return [Finding("email", m.start(), m.end()) for m in _EMAIL.finditer(text)]

    def _ibans(self, text: str) -> list[Finding]:
        out: list[Finding] = []
        for start in _IBAN_START.finditer(text):
            if out and start.start() < out[-1].end:
                continue
            pattern = _iban_pattern(start.group()[:2])
            m = pattern.match(text, start.start()) if pattern is not None else None
            if m is not None and iban_valid(m.group()):
                out.append(Finding("iban", m.start(), m.end()))
        return out

    def _cards(self, text: str) -> list[Finding]:
        out = []
        for m in _DIGIT_RUN.finditer(text):
            if sum(c.isdigit() for c in m.group()) >= _CARD_DIGITS[0]:
                out += [Finding("credit_card", a, b) for a, b in _card_in(text, _groups(m.group(), m.start()))]
        return out

    def _ips(self, text: str) -> list[Finding]:
        out = []
        for pattern in (_IPV4, _IPV6):
            for m in pattern.finditer(text):
                candidate = m.group()
                if pattern is _IPV6 and sum(c.isalnum() for c in candidate) < 2:
                    continue
                if pattern is _IPV4 and _VERSION_BEFORE.search(text[max(0, m.start() - 12) : m.start()]):
                    continue
                try:
                    ipaddress.ip_address(candidate)
                except ValueError:
                    continue
                out.append(Finding("ip_address", m.start(), m.end()))
        return out

    def _phones(self, text: str) -> list[Finding]:
        import phonenumbers

        if sum(c.isdigit() for c in text) < 7:
            return []
        matcher = phonenumbers.PhoneNumberMatcher(text, self.phone_region, leniency=phonenumbers.Leniency.VALID)
        # Mixed "." and "-" separators are section numbers ("Clause 252.227-7013"), not phones.
        return [Finding("phone", m.start, m.end) for m in matcher if not ("." in m.raw_string and "-" in m.raw_string)]


def redact(text: str, findings: list[Finding]) -> str:
    """The text with each finding replaced by its type in brackets, e.g. [EMAIL]."""
    parts, last = [], 0
    for f in sorted(findings, key=lambda f: f.start):
        parts.append(text[last : f.start])
        parts.append(f"[{f.type.upper()}]")
        last = f.end
    parts.append(text[last:])
    return "".join(parts)


def mask(value: str) -> str:
    """A preview that shows the shape, not the value: first and last two characters."""
    return value if len(value) <= 4 else value[:2] + "*" * (len(value) - 4) + value[-2:]


@dataclass(frozen=True)
class PiiOptions:
    phone_region: str = "US"
    presidio_model: str | None = None  # e.g. "blank:en" or an installed spaCy model


_DETECTORS: dict[PiiOptions, PiiDetector] = {}


def detector_for(options: PiiOptions) -> PiiDetector:
    """One detector per process and options (presidio takes seconds to load)."""
    if options not in _DETECTORS:
        _DETECTORS[options] = PiiDetector(options.phone_region, options.presidio_model)
    return _DETECTORS[options]


def detect_batch(docs: list[tuple[str, str]], options: PiiOptions) -> list[list[Finding]]:
    """Findings per (doc_id, text); runs in a worker."""
    detector = detector_for(options)
    return [detector.find(text) for _, text in docs]


@dataclass
class PiiExample:
    doc_id: str
    start: int
    end: int
    preview: str  # masked


@dataclass
class PiiTally:
    """Counts by type, documents with any finding, and the first examples of each type."""

    counts: Counter[str] = field(default_factory=Counter)
    docs_with_pii: int = 0
    examples: dict[str, list[PiiExample]] = field(default_factory=dict)

    def add(self, doc_id: str, text: str, findings: list[Finding]) -> None:
        if findings:
            self.docs_with_pii += 1
        for f in findings:
            self.counts[f.type] += 1
            bucket = self.examples.setdefault(f.type, [])
            if len(bucket) < MAX_EXAMPLES_PER_TYPE:
                bucket.append(PiiExample(doc_id, f.start, f.end, mask(text[f.start : f.end])))

    def as_dict(self) -> dict[str, Any]:
        return {
            "counts": {**{t: self.counts.get(t, 0) for t in PII_TYPES}, **dict(sorted(self.counts.items()))},
            "docs_with_pii": self.docs_with_pii,
            "examples": {t: [asdict(e) for e in v] for t, v in self.examples.items()},
        }
