import sqlite3
import threading

import pytest

from fake_openai import FakeOpenAI
from llmassay.backends.openai_compat import OpenAIBackend
from llmassay.engine.cache import RequestCache
from llmassay.engine.engine import Engine
from llmassay.types import GenerateRequest, Generation, LlmassayError, LoglikelihoodRequest


class Counting:
    """The real backend, instrumented to record what reaches it."""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.seen: list = []

    def loglikelihood(self, reqs):
        self.seen.extend(reqs)
        return self.inner.loglikelihood(reqs)

    def generate(self, reqs):
        self.seen.extend(reqs)
        return self.inner.generate(reqs)

    def tokenize(self, text):
        return self.inner.tokenize(text)

    def fingerprint(self):
        return self.inner.fingerprint()


REQS = [LoglikelihoodRequest("Question: 1+1?\nAnswer:", c) for c in (" 2", " 3", " 2", " eleven")]


def test_dedup_order_and_stats(smollm2):
    backend = Counting(smollm2)
    engine = Engine(backend, batch_size=2)
    out = engine.loglikelihood(REQS)
    assert len(backend.seen) == 3  # the duplicate " 2" is computed once
    assert out[0] == out[2]
    assert [r.logprob for r in out] == [r.logprob for r in smollm2.loglikelihood(REQS)]
    # length-sorted: longest continuation reaches the backend first
    assert backend.seen[0].continuation == " eleven"
    assert engine.stats.requests == 4 and engine.stats.unique == 3 and engine.stats.computed == 3
    assert engine.stats.tokens > 0


def test_cache_answers_a_second_engine_without_the_backend(smollm2, tmp_path):
    path = tmp_path / "c.sqlite"
    first = Engine(Counting(smollm2), cache=RequestCache(path))
    gen = [GenerateRequest(prompt="Say:", max_tokens=4)]
    a = first.loglikelihood(REQS)
    g = first.generate(gen)
    backend = Counting(smollm2)
    second = Engine(backend, cache=RequestCache(path))
    assert second.loglikelihood(REQS) == a
    assert second.generate(gen) == g
    assert backend.seen == []
    assert second.stats.cache_hits == 4 and second.stats.computed == 0
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == 4


def test_cache_key_depends_on_fingerprint(smollm2, tmp_path):
    path = tmp_path / "c.sqlite"
    Engine(smollm2, cache=RequestCache(path)).loglikelihood(REQS[:1])

    class OtherModel(Counting):
        def fingerprint(self):
            return {**self.inner.fingerprint(), "model_sha256": "different"}

    backend = OtherModel(smollm2)
    Engine(backend, cache=RequestCache(path)).loglikelihood(REQS[:1])
    assert len(backend.seen) == 1


def test_temperature_repeats_are_not_deduplicated(smollm2):
    backend = Counting(smollm2)
    reqs = [GenerateRequest(prompt="Once", max_tokens=6, temperature=1.0, seed=5, repeat=k) for k in range(3)]
    Engine(backend).generate(reqs + reqs[:1])
    assert len(backend.seen) == 3


def test_concurrent_writers_share_one_cache_file(tmp_path):
    path = tmp_path / "c.sqlite"
    errors: list[Exception] = []

    def writer(k: int) -> None:
        try:
            cache = RequestCache(path)
            for i in range(50):
                cache.put_many("generate", [(f"{k}-{i}", {"v": i})])
            cache.close()
        except Exception as exc:  # noqa: BLE001 - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(RequestCache(path)) == 200


# -- every answer is cached the moment it exists --------------------------------------------
ITEMS = [GenerateRequest(prompt=f"Item {i}: 3+4=", max_tokens=2) for i in range(4)]


def item_prompts(fake: FakeOpenAI, since: int = 0, fault: str | None = None) -> list[str]:
    return [r["body"]["prompt"] for r in fake.requests[since:] if fault in (None, r["fault"])]


@pytest.mark.parametrize("concurrency", [1, 4])
def test_answers_that_arrived_survive_a_failing_neighbour(tmp_path, concurrency):
    """The server answers 2 of a batch's 4 requests, then HTTP 500 for good: the 2 answers
    are in the cache, the error says so, and the rerun asks only for the other 2."""
    path = tmp_path / "c.sqlite"
    with FakeOpenAI() as fake:
        fake.fail_after = (2, "500")
        args = {"base_url": fake.base_url, "concurrency": concurrency, "max_retries": 1, "backoff_base": 0.01}
        engine = Engine(OpenAIBackend("toy", **args), cache=RequestCache(path), batch_size=64)
        with pytest.raises(LlmassayError) as info:
            engine.generate(ITEMS)
        assert str(info.value).endswith("HTTP 500: server exploded (2 answers kept in the cache; rerun to continue)")
        answered = item_prompts(fake, fault="ok")
        assert len(answered) == 2 and len(RequestCache(path)) == 2
        fake.fail_after = None  # the server recovers, at the same address
        sent = len(fake.requests)
        rerun = Engine(OpenAIBackend("toy", **args), cache=RequestCache(path))
        texts = [g.text for g in rerun.generate(ITEMS)]
        assert sorted(item_prompts(fake, sent)) == sorted({r.prompt for r in ITEMS} - set(answered))
        assert texts == [" 7"] * 4 and rerun.stats.cache_hits == 2 and rerun.stats.computed == 2


class WholeLists:
    """A backend that answers whole lists (as llamacpp and hf) and fails on its second call."""

    name = "scripted/whole-lists"

    def __init__(self) -> None:
        self.calls = 0

    def generate(self, reqs):
        self.calls += 1
        if self.calls == 2:
            raise LlmassayError("scripted: the second batch fails")
        return [Generation(f"answer to {r.prompt}", n_prompt_tokens=1, n_tokens=1, finish_reason="stop") for r in reqs]

    def fingerprint(self):
        return {"backend": "scripted"}


def test_a_whole_list_backend_keeps_its_finished_batches(tmp_path):
    path = tmp_path / "c.sqlite"
    with pytest.raises(LlmassayError, match=r"second batch fails \(2 answers kept in the cache; rerun to continue\)$"):
        Engine(WholeLists(), cache=RequestCache(path), batch_size=2).generate(ITEMS)
    backend = WholeLists()
    backend.calls = 2  # its next call is the third: it answers
    again = Engine(backend, cache=RequestCache(path), batch_size=2)
    assert [g.text for g in again.generate(ITEMS)] == [f"answer to {r.prompt}" for r in ITEMS]
    assert again.stats.cache_hits == 2 and backend.calls == 3


def test_without_a_cache_the_error_is_the_backends_own(tmp_path):
    with pytest.raises(LlmassayError) as info:
        Engine(WholeLists(), batch_size=2).generate(ITEMS)
    assert str(info.value) == "scripted: the second batch fails"
