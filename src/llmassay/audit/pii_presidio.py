"""Optional extra PII types from Microsoft presidio-analyzer (`pip install 'llmassay[presidio]'`).

presidio finds what the built-in detectors do not: URLs, US social security and bank
numbers, crypto wallets, driver licences, ..., and with a spaCy NER model (e.g.
`en_core_web_lg`, installed beforehand) person and place names. llmassay never downloads
at run time, so presidio's two network habits are switched off: a spaCy model that is not
installed is an error (not a download), and the public-suffix list comes from
tldextract's bundled snapshot. The built-in detectors keep e-mail, phone, card, IBAN and IP.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from llmassay.types import LlmassayError

# Types the built-in detectors own (validated by checksums / libphonenumber).
BUILT_IN = {"EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS"}
MIN_SCORE = 0.5


def presidio_finder(model: str) -> Callable[[str], list[tuple[str, int, int]]]:
    """A function text → [(type, start, end)] of presidio findings (score ≥ 0.5) of the types
    the built-in detectors do not cover; `model` is a spaCy model name or `blank:en`."""
    try:
        import spacy
        import tldextract
        from presidio_analyzer import AnalyzerEngine
        from presidio_analyzer.nlp_engine import SpacyNlpEngine
    except ImportError:
        raise LlmassayError("--presidio needs presidio-analyzer: pip install 'llmassay[presidio]'") from None
    if not (model.startswith("blank:") or spacy.util.is_package(model) or Path(model).exists()):
        raise LlmassayError(
            f"--presidio: spaCy model '{model}' is not installed (llmassay does not download at run time); "
            "install it first, or use blank:en for presidio's pattern recognisers only"
        )
    # Offline: the public-suffix list from the copy bundled with tldextract, never fetched.
    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": model}])
    engine.nlp = {"en": spacy.load(model)}  # set directly: SpacyNlpEngine.load() would download a missing model
    analyzer = AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])

    def find(text: str) -> list[tuple[str, int, int]]:
        return [
            (f"presidio:{r.entity_type}", r.start, r.end)
            for r in analyzer.analyze(text, language="en")
            if r.entity_type not in BUILT_IN and r.score >= MIN_SCORE
        ]

    return find
