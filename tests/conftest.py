"""Shared fixtures: an isolated LLMASSAY_HOME and one loaded embedded model per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never reach the hub: transformers, huggingface_hub and datasets read these flags when
# first imported, so they are set before any test module imports them (this process only).
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"


def pytest_sessionstart(session: pytest.Session) -> None:
    """A llama.cpp build that crashes on this CPU (AMX, README) would kill pytest mid-suite
    with no summary: check it once, in a subprocess, and stop at once with its one line."""
    if os.environ.get("LLMASSAY_TEST_TIER") == "fast" or session.config.option.collectonly:
        return  # the fast tier loads no model
    from llmassay.selfcheck import run_selfcheck

    check = run_selfcheck()
    if not check.ok:
        pytest.exit(check.message, returncode=3)


@pytest.fixture(autouse=True, scope="session")
def _isolated_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Hash memo, default cache and assembled models go to a temp dir, never ~/.cache.
    os.environ["LLMASSAY_HOME"] = str(tmp_path_factory.mktemp("llmassay_home"))


@pytest.fixture(scope="session")
def smollm2():
    from llmassay.backends.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend("smollm2-135m")
    yield backend
    backend.llm.close()  # before interpreter shutdown, where llama-cpp-python's __del__ fails


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    from llmassay.models import resolve_model_path

    return resolve_model_path("smollm2-135m")


@pytest.fixture(scope="session")
def local_ray():
    """A local Ray cluster of 2 CPUs (as on the CI machine) for `--executor ray` tests."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


# -- test tiers -------------------------------------------------------------------------
# `make test-fast` (LLMASSAY_TEST_TIER=fast, -m "not slow") must run no model, server, Ray
# or browser. Tests using the model or Ray fixtures are marked slow here; any other test
# that loads a model, starts a model server or Ray, or launches Chromium fails under the
# fast tier, naming itself, so a new heavy test cannot slip into the fast tier unmarked.
SLOW_FIXTURES = {"smollm2", "smollm2_path", "local_ray", "two_models", "smollm2_run"}
FAST_TIER = os.environ.get("LLMASSAY_TEST_TIER") == "fast"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def _forbidden(what: str):
    def refuse(*args, **kwargs):
        pytest.fail(f"{what} in the fast tier: mark this test @pytest.mark.slow", pytrace=False)

    return refuse


@pytest.fixture(autouse=True)
def _fast_tier_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    if not FAST_TIER:
        return
    import subprocess

    try:
        import llama_cpp  # the [llamacpp] extra: absent, no model can load anyway
    except ImportError:
        llama_cpp = None
    if llama_cpp is not None:
        monkeypatch.setattr(llama_cpp.Llama, "__init__", _forbidden("a llama.cpp model loaded"))
        monkeypatch.setattr(llama_cpp.Llama, "__del__", lambda self: None)  # the refused object has nothing to free
    real_popen = subprocess.Popen.__init__

    def popen(self, args, *rest, **kwargs):
        text = " ".join(map(str, args)) if isinstance(args, (list, tuple)) else str(args)
        if any(word in text for word in ("llama_cpp.server", "llamacpp/", "hf/", "chromium", "ray start")):
            pytest.fail(f"a model server, model run or browser started in the fast tier ({text[:80]}): "
                        "mark this test @pytest.mark.slow", pytrace=False)
        real_popen(self, args, *rest, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", popen)
    try:
        from playwright.sync_api._generated import BrowserType

        monkeypatch.setattr(BrowserType, "launch", _forbidden("a browser launched"))
    except ImportError:
        pass
    try:
        import ray
    except ImportError:
        return
    monkeypatch.setattr(ray, "init", _forbidden("Ray started"))
