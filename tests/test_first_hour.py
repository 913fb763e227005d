"""Issue #25, "the first hour": what a new user hit trying every README command — each
fix proved with a fake server, a scripted backend or a fixed-width console."""

from __future__ import annotations

import logging
import socket
import time

import httpx
import pytest

from fake_openai import FakeOpenAI
from llmassay.backends.openai_compat import OpenAIBackend
from llmassay.cli import main
from llmassay.types import GenerateRequest, LlmassayError

FAST = {"backoff_base": 0.01, "backoff_max": 0.05, "timeout": 0.3}


def free_port() -> int:
    """A port nothing listens on: bound, then released."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- item 2: a refused connection fails at once; retries that happen are shown ------------
def test_a_refused_connection_fails_at_once_in_one_line():
    b = OpenAIBackend("m", base_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=5, backoff_base=2.0)
    start = time.monotonic()
    with pytest.raises(LlmassayError) as info:
        b.generate([GenerateRequest(prompt="x", max_tokens=2)])
    assert time.monotonic() - start < 1.5  # five retries at backoff_base 2 s would take > 30 s
    message = str(info.value)
    assert "\n" not in message and "cannot connect to" in message and "connection refused" in message
    assert b.retries == 0


def test_an_unknown_host_fails_at_once_naming_it():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno -2] Name or service not known", request=request)

    b = OpenAIBackend("m", base_url="http://no-such-host.invalid/v1", max_retries=5)
    b._client = httpx.Client(transport=httpx.MockTransport(refuse))
    with pytest.raises(LlmassayError, match=r"cannot connect to http://no-such-host.invalid/v1/completions: "
                                            r"unknown host"):
        b.generate([GenerateRequest(prompt="x", max_tokens=2)])
    assert b.retries == 0


def test_the_cli_names_a_refused_server_before_any_retry(tmp_path, capsys):
    url = f"http://127.0.0.1:{free_port()}/v1"
    start = time.monotonic()
    code = main(["run", "--model", "openai/m", "--model-args", f"base_url={url}", "--tasks", "arith_sample",
                 "--limit", "5", "--output-path", str(tmp_path / "o"), "--cache-path", str(tmp_path / "c.sqlite")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and time.monotonic() - start < 5
    assert err.startswith("error: openai: cannot connect to") and "connection refused" in err and "\n" not in err


def test_retries_that_do_happen_are_said(caplog):
    with FakeOpenAI() as fake:
        fake.faults.extend(["503", "429"])
        b = OpenAIBackend("toy", base_url=fake.base_url, **FAST)
        with caplog.at_level(logging.WARNING, logger="llmassay"):
            assert b.generate([GenerateRequest(prompt="x", max_tokens=2)])[0].text == " 7"
    said = [r.getMessage() for r in caplog.records if r.name.startswith("llmassay")]
    assert len(said) == 2 and b.retries == 2
    assert said[0].startswith("openai: retrying in ") and said[0].endswith(": HTTP 503, attempt 2/6")
    assert said[1].endswith(": HTTP 429, attempt 3/6")


# -- item 4: an option of a probe the run does not include is an error ---------------------
@pytest.mark.parametrize("argv,names", [
    (["--perturbations", "typos_5"], "--perturbations is an option of --probe brittleness"),
    (["--modes", "strict"], "--modes is an option of --probe structured"),
    (["-P", "brittleness.repeats=3"], "-P brittleness.repeats: probe 'brittleness' is not in this run"),
    (["-P", "repeats=3"], "-P repeats=3: expected PROBE.KEY=VALUE"),
])
def test_an_option_of_an_unselected_probe_is_a_one_line_error(tmp_path, capsys, argv, names):
    code = main(["run", "--model", "llamacpp/smollm2-135m", "--tasks", "arith_sample", "--limit", "2",
                 "--output-path", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and names in err and "\n" not in err
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").glob("results_*"))


def test_the_python_api_refuses_a_bare_option_of_an_unselected_probe(tmp_path):
    from llmassay.evaluate import RunConfig, evaluate

    cfg = RunConfig(model="test/x", tasks=["arith_sample"], output_path=str(tmp_path / "o"),
                    probe_options={"perturbations": "typos_5"})
    with pytest.raises(LlmassayError, match="option 'perturbations': it is an option of brittleness, "
                                            "and --probe is accuracy"):
        evaluate(cfg, backend=object())  # refused before the backend is touched
