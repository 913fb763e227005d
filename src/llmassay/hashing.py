"""Content hashes for cache keys, config hashes and model fingerprints."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from llmassay.home import llmassay_home


def stable_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def stable_hash(obj: Any) -> str:
    """sha256 of the canonical JSON of `obj`: equal configs give equal hashes across runs."""
    return hashlib.sha256(stable_json(obj).encode("utf-8")).hexdigest()


def file_sha256(path: str | Path) -> str:
    """sha256 of a (large) file, memoised on disk by (path, size, mtime).

    Hashing a 250 MB GGUF takes a second or more; a model is fingerprinted on every run.
    """
    path = Path(path).resolve()
    stat = path.stat()
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    memo_file = llmassay_home() / "file_hashes.json"
    try:
        memo = json.loads(memo_file.read_text())
    except (OSError, ValueError):
        memo = {}
    if key in memo:
        return memo[key]
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    memo[key] = digest.hexdigest()
    try:
        memo_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(memo))
        tmp.replace(memo_file)
    except OSError:
        pass  # a read-only home only costs a re-hash next time
    return memo[key]
