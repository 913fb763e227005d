"""Where llmassay keeps its caches: one place, imported by core modules and backends alike.

`$LLMASSAY_HOME` if set, else `$XDG_CACHE_HOME/llmassay` (the XDG base-directory rule that
scripts/install.sh follows for its wheels), else `~/.cache/llmassay`. Nothing in it is
needed to read a finished run: every part can be rebuilt, which is why `llmassay cache
prune` may delete any of it. Run folders (results, samples, resume checkpoints) are never
here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def llmassay_home() -> Path:
    """Where caches and assembled models live; LLMASSAY_HOME moves it (tests use a tmp dir)."""
    explicit = os.environ.get("LLMASSAY_HOME")
    if explicit:
        return Path(explicit).expanduser()
    return user_cache_dir() / "llmassay"


def home_source() -> str:
    """Which setting chose the home, for `llmassay cache info`."""
    if os.environ.get("LLMASSAY_HOME"):
        return "$LLMASSAY_HOME"
    return "$XDG_CACHE_HOME" if os.path.isabs(os.environ.get("XDG_CACHE_HOME", "")) else "default (~/.cache)"


def user_cache_dir() -> Path:
    """$XDG_CACHE_HOME, else ~/.cache. The spec says a relative value is invalid and is
    ignored, so a stray `XDG_CACHE_HOME=cache` does not scatter caches per working folder."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"


@dataclass(frozen=True)
class HomePart:
    """One thing that lives in the home: what `llmassay cache info` lists and `prune` trims."""

    name: str
    path: str  # relative to the home
    what: str
    prunable: bool = True  # False: too small and too costly to rebuild to be worth removing


# Every writer of the home is named here (grep `llmassay_home()` to check); anything else
# found there is listed by `cache info` as "other" and left alone by `prune`.
HOME_PARTS: tuple[HomePart, ...] = (
    HomePart("request cache", "cache.sqlite", "answers to model requests, by backend fingerprint (engine/cache.py)"),
    HomePart("models", "models", "models assembled from packaged parts (models.py: gemma3-270m)"),
    HomePart("hf-dequantised", "hf-dequantised", "GGUF weights de-quantised for hf/ (backends/hf.py)"),
    HomePart("indexes", "factuality", "dense retrieval embeddings of the factuality KB (factuality/retrieval.py)"),
    HomePart("wheels", "wheels", "llama-cpp-python wheels built by scripts/install.sh, per CPU"),
    HomePart("file hashes", "file_hashes.json", "sha256 of model files by path, size and mtime (hashing.py)",
             prunable=False),
)
