"""Where llmassay keeps its caches: one place, imported by core modules and backends alike."""

from __future__ import annotations

import os
from pathlib import Path


def llmassay_home() -> Path:
    """Where caches and assembled models live; LLMASSAY_HOME moves it (tests use a tmp dir)."""
    return Path(os.environ.get("LLMASSAY_HOME", Path.home() / ".cache" / "llmassay"))
