"""Secrets: an API key is read only from the variable named by `api_key_env` (or, with no
base_url model arg, OPENAI_API_KEY: tests/test_openai_backend.py), sent only in
the Authorization header, and never written to results, samples, progress files, the
cache (keys or answers), the hash memo, or printed in an error."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI
from llmassay.cli import main
from llmassay.evaluation import RunConfig, evaluate
from llmassay.types import LlmassayError
from reliability_helpers import one_line

pytestmark = pytest.mark.reliability

CATEGORY = "secrets"
SECRET = "sk-reliability-5f2c9e1d7b3a"
OTHER_SECRET = "sk-reliability-other-0a9b8c"


@pytest.fixture()
def fake():
    with FakeOpenAI() as server:
        yield server


def run(fake: FakeOpenAI, root: Path, task: str = "arith_sample", out: str = "out", **model_args) -> object:
    return evaluate(RunConfig(model="openai/fake", tasks=[task], limit=4, output_path=str(root / out),
                              cache_path=str(root / "cache.sqlite"), chunk_size=2,
                              model_args={"base_url": fake.base_url, "max_retries": 0, **model_args}))


def files_under(*roots: Path) -> list[Path]:
    return [p for root in roots if root.exists() for p in ([root] if root.is_file() else root.rglob("*")) if p.is_file()]


def assert_nowhere(secret: str, *roots: Path) -> int:
    files = files_under(*roots)
    for path in files:
        assert secret not in str(path), f"in a file name: {path}"
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # SQLite removes its -shm/-wal files when the last connection closes
            continue
        assert secret.encode() not in data, f"in {path}"
    return len(files)


def test_key_reaches_the_server_and_nothing_else(fake, tmp_path, monkeypatch, reliability):
    monkeypatch.setenv("LLMASSAY_REL_KEY", SECRET)
    home = Path(os.environ["LLMASSAY_HOME"])
    with reliability.case(CATEGORY, "key from api_key_env: sent as Bearer token on every request"):
        done = run(fake, tmp_path, "mmlu_sample", api_key_env="LLMASSAY_REL_KEY")  # scoring and generation
        assert fake.seen() > 4
        assert {r["auth"] for r in fake.requests} == {f"Bearer {SECRET}"}
    with reliability.case(CATEGORY, "key absent from results, samples, progress file, cache file, LLMASSAY_HOME"):
        assert_nowhere(SECRET, tmp_path, home)
        names = {p.name.split("_")[0] for p in files_under(tmp_path)}
        assert {"results", "samples", "mmlu", "cache.sqlite"} <= names  # mmlu_sample__accuracy.jsonl: progress
        assert done.results["config"]["model_args"]["api_key_env"] == "LLMASSAY_REL_KEY"
    with reliability.case(CATEGORY, "key absent from cache keys: a different key reuses every cached answer"):
        monkeypatch.setenv("LLMASSAY_REL_KEY", OTHER_SECRET)
        before = fake.seen()
        again = run(fake, tmp_path, "mmlu_sample", out="out2", api_key_env="LLMASSAY_REL_KEY")
        assert again.results["engine"]["computed"] == 0 and again.results["engine"]["cache_hits"] > 0
        assert fake.seen() - before <= 2  # only the backend's self-check, never cached
        conn = sqlite3.connect(tmp_path / "cache.sqlite")
        keys = [k for (k,) in conn.execute("SELECT key FROM answers")]
        conn.close()
        assert keys and all(SECRET not in k and OTHER_SECRET not in k for k in keys)


def test_other_environment_keys_are_never_used(fake, tmp_path, monkeypatch, reliability):
    with reliability.case(CATEGORY, "OPENAI_API_KEY set, base_url given, no api_key_env: no Authorization sent, key not written"):
        monkeypatch.setenv("OPENAI_API_KEY", SECRET)
        run(fake, tmp_path)
        assert fake.seen() == 4 and {r["auth"] for r in fake.requests} == {None}
        assert_nowhere(SECRET, tmp_path)


def test_unset_variable_is_one_line_naming_the_variable(fake, tmp_path, monkeypatch, reliability):
    with reliability.case(CATEGORY, "api_key_env names an unset variable: one line naming the variable, nothing sent"):
        monkeypatch.delenv("LLMASSAY_REL_UNSET", raising=False)
        with pytest.raises(LlmassayError) as info:
            run(fake, tmp_path, api_key_env="LLMASSAY_REL_UNSET")
        assert "environment variable LLMASSAY_REL_UNSET (api_key_env) is not set" in one_line(str(info.value))
        assert fake.seen() == 0


def test_a_server_quoting_the_key_back_is_redacted(fake, tmp_path, monkeypatch, capsys, reliability):
    with reliability.case(CATEGORY, "server error message quoting the key: redacted in the CLI's error line"):
        monkeypatch.setenv("LLMASSAY_REL_KEY", SECRET)
        fake.faults.append("401-echo-key")
        code = main(["run", "--model", "openai/fake", "--model-args",
                     f"base_url={fake.base_url},api_key_env=LLMASSAY_REL_KEY,max_retries=0",
                     "--tasks", "arith_sample", "--limit", "2", "--output-path", str(tmp_path / "out"),
                     "--cache-path", str(tmp_path / "c.sqlite")])
        captured = capsys.readouterr()
        assert code == 2
        line = one_line(captured.err.strip())
        assert "answered HTTP 401: Incorrect API key provided: [api key]" in line
        assert SECRET not in captured.err + captured.out
        assert fake.requests[0]["auth"] == f"Bearer {SECRET}"
        assert_nowhere(SECRET, tmp_path)


def test_a_key_passed_as_a_model_arg_is_refused_without_echo(fake, tmp_path, capsys, reliability):
    with reliability.case(CATEGORY, "key given as --model-args api_key=...: refused, value not echoed or written"):
        code = main(["run", "--model", "openai/fake", "--model-args", f"base_url={fake.base_url},api_key={SECRET}",
                     "--tasks", "arith_sample", "--limit", "2", "--output-path", str(tmp_path / "out")])
        captured = capsys.readouterr()
        assert code == 2
        assert "openai: unknown model args: api_key" in one_line(captured.err.strip())
        assert SECRET not in captured.err + captured.out
        assert fake.seen() == 0
        assert_nowhere(SECRET, tmp_path)
