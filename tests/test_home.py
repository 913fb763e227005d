"""Where the llmassay home is: $LLMASSAY_HOME, else $XDG_CACHE_HOME/llmassay, else
~/.cache/llmassay (the rule scripts/install.sh follows for its wheels)."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmassay.backends.base import _REGISTRY
from llmassay.home import home_source, llmassay_home


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("LLMASSAY_HOME", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    return tmp_path


def test_default_is_dot_cache(clean_env):
    assert llmassay_home() == clean_env / "user" / ".cache" / "llmassay"
    assert home_source() == "default (~/.cache)"


def test_xdg_cache_home_is_honoured(clean_env, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(clean_env / "xdg"))
    assert llmassay_home() == clean_env / "xdg" / "llmassay"
    assert home_source() == "$XDG_CACHE_HOME"
    # the XDG spec: a relative value is invalid and ignored (an empty one too)
    for value in ("relative/cache", ""):
        monkeypatch.setenv("XDG_CACHE_HOME", value)
        assert llmassay_home() == clean_env / "user" / ".cache" / "llmassay"


def test_llmassay_home_wins_over_xdg(clean_env, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(clean_env / "xdg"))
    monkeypatch.setenv("LLMASSAY_HOME", str(clean_env / "mine"))
    assert llmassay_home() == clean_env / "mine"
    assert home_source() == "$LLMASSAY_HOME"
    monkeypatch.setenv("LLMASSAY_HOME", "~/elsewhere")
    assert llmassay_home() == clean_env / "user" / "elsewhere"
    monkeypatch.setenv("LLMASSAY_HOME", "")  # set but empty: as if unset, not the working folder
    assert llmassay_home() == clean_env / "xdg" / "llmassay"


def test_a_run_writes_its_request_cache_under_xdg_cache_home(clean_env, monkeypatch):
    from llmassay.cli import main

    monkeypatch.setitem(_REGISTRY, "scripted", "fakes:hashed_backend")
    monkeypatch.setenv("XDG_CACHE_HOME", str(clean_env / "xdg"))
    assert main(["run", "--model", "scripted/a", "--tasks", "arith_sample", "--limit", "2",
                 "--output-path", str(clean_env / "out")]) == 0
    assert (clean_env / "xdg" / "llmassay" / "cache.sqlite").is_file()
    assert not (clean_env / "user" / ".cache").exists()
