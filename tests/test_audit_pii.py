"""PII detectors on valid and invalid values: checksums decide, not the look of a number."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("phonenumbers")
pytest.importorskip("stdnum")

from llmassay.audit import CorpusSpec, audit_pii  # noqa: E402
from llmassay.audit.pii import PiiDetector, mask, redact  # noqa: E402
from llmassay.cli import main  # noqa: E402

DETECTOR = PiiDetector("US")


def _types(text: str) -> list[tuple[str, str]]:
    return [(f.type, text[f.start : f.end]) for f in DETECTOR.find(text)]


@pytest.mark.parametrize(
    "number, valid",
    [
        ("4111 1111 1111 1111", True),  # Visa test number
        ("4111-1111-1111-1112", False),  # Luhn fails
        ("5555555555554444", True),  # Mastercard
        ("5555555555554445", False),
        ("378282246310005", True),  # Amex, 15 digits
        ("378282246310006", False),
        ("9111111111111111", False),  # passes no issuer prefix
    ],
)
def test_card_numbers_need_luhn_and_issuer(number: str, valid: bool) -> None:
    assert (("credit_card", number) in _types(f"card: {number}.")) is valid


@pytest.mark.parametrize(
    "iban, valid",
    [
        ("GB82 WEST 1234 5698 7654 32", True),
        ("GB82 WEST 1234 5698 7654 33", False),
        ("DE89370400440532013000", True),
        ("DE89370400440532013001", False),
    ],
)
def test_iban_mod97(iban: str, valid: bool) -> None:
    assert (("iban", iban) in _types(f"IBAN {iban} thanks")) is valid


@pytest.mark.parametrize(
    "text, found",
    [
        # The greedy candidate took the expiry date's first digits (18 digits, Luhn fails).
        ("card 4111 1111 1111 1111 12/26 exp", [("credit_card", "4111 1111 1111 1111")]),
        ("ref 12 4111 1111 1111 1111.", [("credit_card", "4111 1111 1111 1111")]),  # a leading group
        ("cards 4111111111111111 5555555555554444", [("credit_card", "4111111111111111"),
                                                     ("credit_card", "5555555555554444")]),
        ("bad 4111 1111 1111 1112 12/26", []),  # no span of whole groups passes Luhn
        ("run 41111111111111111 2", []),  # a group is never split: 17 digits with one too many
        ("scores 4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1", []),  # 16 one-digit numbers are not a printed card
    ],
)
def test_card_found_at_group_boundaries(text: str, found: list[tuple[str, str]]) -> None:
    assert [f for f in _types(text) if f[0] == "credit_card"] == found


@pytest.mark.parametrize(
    "text, found",
    [
        ("pay DE89 3704 0044 0532 0130 00 2024 now", ["DE89 3704 0044 0532 0130 00"]),  # followed by a year
        ("IBAN GB82 WEST 1234 5698 7654 32 BY phone", ["GB82 WEST 1234 5698 7654 32"]),  # followed by a word
        ("to DE89370400440532013000 GB82WEST12345698765432", ["DE89370400440532013000", "GB82WEST12345698765432"]),
        ("NO93 8601 1117 947 is Norway's 15", ["NO93 8601 1117 947"]),  # the shortest country length
        ("cut DE89 3704 0044 0532 0130", []),  # two characters short of Germany's 22
        ("run DE8937040044053201300012", []),  # longer than 22 without a boundary at 22
        ("XX89 3704 0044 0532 0130 00", []),  # no such country
    ],
)
def test_iban_cut_at_its_country_length(text: str, found: list[str]) -> None:
    assert [v for t, v in _types(text) if t == "iban"] == found


def test_email_phone_ip() -> None:
    text = (
        "Write to jane.doe+x@mail.example.co.uk or call (415) 555-2671 / +44 20 7946 0958; "
        "servers 192.168.10.1 and 2001:db8::ff00:42:8329; not an IP 999.12.1.1, not a phone 12345, time 12:30:45"
    )
    assert _types(text) == [
        ("email", "jane.doe+x@mail.example.co.uk"),
        ("phone", "(415) 555-2671"),
        ("phone", "+44 20 7946 0958"),
        ("ip_address", "192.168.10.1"),
        ("ip_address", "2001:db8::ff00:42:8329"),
    ]


def test_version_numbers_and_clause_numbers_are_not_pii() -> None:
    """False positives seen on a real corpus (Debian copyright files)."""
    text = "zlib version 1.3.0.1, $Id: strftime.c,v 1.10.2.3 2005, Clause 252.227-7013 (c) (1); host 10.0.0.1"
    assert _types(text) == [("ip_address", "10.0.0.1")]


def test_redaction_and_masking() -> None:
    text = "mail a.b@example.com, card 4111111111111111."
    assert redact(text, DETECTOR.find(text)) == "mail [EMAIL], card [CREDIT_CARD]."
    assert mask("4111111111111111") == "41************11"


def test_audit_counts_offsets_and_redacted_copy(tmp_path: Path) -> None:
    corpus = tmp_path / "c.jsonl"
    rows = [
        {"text": "contact x@example.org or 4111 1111 1111 1111", "meta": 1},
        {"text": "nothing here"},
        {"text": "IBAN DE89370400440532013000, bad card 4111 1111 1111 1112"},
    ]
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows) + "[1, 2]\n")
    out = tmp_path / "red.jsonl"
    audit = audit_pii(CorpusSpec((str(corpus),)), redact_to=out)
    report = audit.report()
    assert report["counts"] == {"email": 1, "iban": 1, "credit_card": 1, "ip_address": 0, "phone": 0}
    assert report["docs_with_pii"] == 2
    assert report["examples"]["email"][0] == {
        "doc_id": f"{corpus}:1",
        "start": 8,
        "end": 21,
        "preview": "x@*********rg",
    }
    assert report["stream"]["skipped_examples"] == [f"{corpus}:4: not a JSON object; skipped"]
    red = [json.loads(line) for line in out.read_text().splitlines()]
    assert red[0] == {"text": "contact [EMAIL] or [CREDIT_CARD]", "meta": 1}
    assert red[2]["text"] == "IBAN [IBAN], bad card 4111 1111 1111 1112"


def test_cli_pii(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("mail me at someone@example.com\nplain line\n")
    assert (
        main(
            [
                "audit",
                "pii",
                "--corpus",
                str(corpus),
                "--output-dir",
                str(tmp_path / "o"),
                "--redact",
                str(tmp_path / "r.jsonl"),
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "o" / "pii.json").read_text())["counts"]["email"] == 1
    assert json.loads((tmp_path / "r.jsonl").read_text().splitlines()[0]) == {"text": "mail me at [EMAIL]"}
    assert "email" in capsys.readouterr().out


@pytest.mark.slow  # loading spaCy and presidio takes ~10 s
def test_presidio_adds_types_offline(tmp_path: Path) -> None:
    pytest.importorskip("presidio_analyzer")
    corpus = tmp_path / "c.txt"
    corpus.write_text("SSN 536-90-4399 and wallet 1BoatSLRHtKNngkdXEeobR76b53LETtpyT, mail x@example.org\n")
    report = audit_pii(CorpusSpec((str(corpus),)), presidio_model="blank:en").report()
    assert report["counts"]["presidio:US_SSN"] == 1 and report["counts"]["presidio:CRYPTO"] == 1
    assert report["counts"]["email"] == 1 and "presidio:URL" not in report["counts"]  # the e-mail keeps its span


@pytest.mark.slow  # imports spaCy
def test_presidio_missing_model_is_an_error_not_a_download(tmp_path: Path) -> None:
    pytest.importorskip("presidio_analyzer")
    from llmassay.types import LlmassayError

    corpus = tmp_path / "c.txt"
    corpus.write_text("x\n")
    with pytest.raises(LlmassayError, match="not installed"):
        audit_pii(CorpusSpec((str(corpus),)), presidio_model="en_core_web_nonexistent")
