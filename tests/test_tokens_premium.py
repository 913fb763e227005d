"""Token premium: a tokenizer with a planted cost per language must be read back exactly,
and a malformed parallel file is a one-line error naming its line."""

from __future__ import annotations

import json
import math

import pytest

from llmassay.cli import main
from llmassay.tokens.parallel import ParallelText, bundled_parallel, country_names, read_parallel
from llmassay.tokens.premium import measure_premium
from llmassay.tokens.tokenizers import Tokenizer, load_tokenizer
from llmassay.types import LlmassayError


def word_tokenizer() -> Tokenizer:
    """One token per word, except words starting with "x": three tokens each (the planted premium)."""
    return Tokenizer("fake/words", lambda s: [1 + 2 * w.startswith("x") for w in s.split() for _ in range(1 + 2 * w.startswith("x"))], 10)


def test_planted_premium_is_recovered_exactly() -> None:
    items = [{"en": f"a b c {'d ' * i}".strip(), "xx": f"xa xb xc {'xd ' * i}".strip(), "mixed": "xa b"}
             for i in range(6)]
    table = measure_premium(ParallelText("t", items), [word_tokenizer()], tokens_per_second=10.0, price_per_mtok=2.0)
    rows = {r.language: r for r in table.rows}
    assert rows["en"].premium.value == 1.0
    xx = rows["xx"]
    assert xx.premium.value == pytest.approx(3.0) and xx.premium.ci_low == pytest.approx(3.0)  # constant ratio: no spread
    assert xx.tokens_per_word.value == pytest.approx(3.0)
    chars = sum(len(i["xx"]) for i in items)
    assert xx.tokens == 3 * sum(len(i["en"].split()) for i in items)
    assert xx.tokens_per_char.value == pytest.approx(xx.tokens / chars)
    assert xx.tokens_per_1k_chars == pytest.approx(1000 * xx.tokens / chars)
    assert xx.seconds_per_1k_chars == pytest.approx(xx.tokens_per_1k_chars / 10.0)
    assert xx.cost_per_1k_chars == pytest.approx(xx.tokens_per_1k_chars * 2.0 / 1e6)
    # "mixed" is 4 tokens against English's 3 + i: the ratio of sums, and a CI around it.
    mixed = rows["mixed"]
    assert mixed.premium.value == pytest.approx(4 * 6 / sum(3 + i for i in range(6)))
    assert mixed.premium.ci_low < mixed.premium.value < mixed.premium.ci_high


def test_a_language_is_compared_on_the_items_it_shares_with_english_and_one_item_has_no_ci() -> None:
    items = [{"en": "a b", "xx": "xa xb"}, {"en": "a b c d", "yy": "a"}]
    rows = {r.language: r for r in measure_premium(ParallelText("t", items), [word_tokenizer()]).rows}
    assert rows["xx"].n_items == 1 and rows["xx"].premium.value == pytest.approx(3.0)
    assert math.isnan(rows["xx"].premium.ci_low)
    assert rows["yy"].premium.value == pytest.approx(0.25)


def test_languages_without_word_spaces_have_no_tokens_per_word() -> None:
    rows = {r.language: r for r in measure_premium(ParallelText("t", [{"en": "a b", "zh": "人人"}] * 2), [word_tokenizer()]).rows}
    assert rows["zh"].tokens_per_word is None and rows["en"].tokens_per_word is not None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"en": "a", "de": "b"}\nnot json\n', "p.jsonl:2: not JSON"),
        ('["en", "a"]\n', "p.jsonl:1: expected an object"),
        ('{"de": "b", "fr": "c"}\n', "p.jsonl:1: no 'en' field"),
        ('{"en": "a", "de": ""}\n', "p.jsonl:1: field 'de' must be a non-empty string"),
        ('{"en": "a", "de": 3}\n', "p.jsonl:1: field 'de' must be a non-empty string"),
        ('{"en": "a"}\n', "p.jsonl:1: only English"),
        ("\n\n", "no lines"),
    ],
)
def test_malformed_parallel_files_are_one_line_errors(tmp_path, content: str, message: str) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(content)
    with pytest.raises(LlmassayError) as err:
        read_parallel(path)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_user_file_keeps_ids_and_languages(tmp_path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"id": "s1", "en": "Hello", "de": "Hallo", "fr": "Bonjour"}) + "\n")
    text = read_parallel(path)
    assert text.ids == ["s1"] and text.languages == ["en", "de", "fr"]


def test_bundled_sources() -> None:
    udhr = bundled_parallel()
    assert len(udhr.languages) >= 10
    full = [lang for lang in udhr.languages if all(lang in item for item in udhr.items)]
    assert len(full) >= 12 and len(udhr.items) == 4  # 12 languages in all four articles
    names = country_names()
    assert len(names.items) > 200 and {"de", "ru", "zh", "ja"} <= set(names.languages)
    germany = names.items[names.ids.index("DE")]
    assert germany["en"] == "Germany" and germany["de"] == "Deutschland"


def test_tokenizer_spec_errors() -> None:
    for spec, message in [("foo", "expected KIND/NAME"), ("hf/does/not/exist", "no such directory"),
                          ("llamacpp/nope-alias", "no such file")]:
        with pytest.raises(LlmassayError, match=message):
            load_tokenizer(spec)


def test_cli_reports_a_bad_parallel_file_in_one_line(tmp_path, capsys) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"en": "a", "de": 3}\n')
    assert main(["tokens", "premium", "--tokenizer", "llamacpp/smollm2-135m", "--parallel", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {path}:1: field 'de' must be a non-empty string"


@pytest.mark.slow
def test_cli_premium_on_the_bundled_vocabularies(tmp_path, capsys) -> None:
    """SmolLM2's English-centred BPE charges more for Russian than Gemma's 262k vocabulary does."""
    assert main(["tokens", "premium", "--tokenizer", "llamacpp/smollm2-135m", "llamacpp/gemma3-270m",
                 "--source", "udhr", "--output-dir", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "premium_udhr.json").read_text())
    ru = {r["tokenizer"]: r["premium"]["value"] for r in result["rows"] if r["language"] == "ru"}
    assert ru["llamacpp/smollm2-135m"] > 2 * ru["llamacpp/gemma3-270m"] > 2
    assert (tmp_path / "premium_udhr.png").stat().st_size > 1000
