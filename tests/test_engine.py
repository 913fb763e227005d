import sqlite3
import threading

from llmassay.engine.cache import RequestCache
from llmassay.engine.engine import Engine
from llmassay.types import GenerateRequest, LoglikelihoodRequest


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
