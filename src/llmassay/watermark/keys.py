"""Where a watermark key comes from: an environment variable or a file, never the command
line (argv is readable by every user of the machine through the process list), and a
warning when the key is the probe's public default, with which anyone can detect or forge
the watermark."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from llmassay.types import LlmassayError

DEFAULT_KEY = "llmassay"  # the watermark probe's default key, printed by `llmassay probes`: not a secret
logger = logging.getLogger(__name__)


def read_key(env: str | None = None, file: str | None = None, given: str | None = None) -> str:
    """The key from the variable `env`, the file `file` (one trailing newline dropped) or, with a
    warning, `given` on the command line. Errors name the variable or file, never the key."""
    if env is not None:
        key = os.environ.get(env)
        if not key:
            raise LlmassayError(f"--key-env {env}: the variable is {'empty' if key == '' else 'not set'}")
    elif file is not None:
        try:
            key = Path(file).read_text(encoding="utf-8").removesuffix("\n").removesuffix("\r")
        except (OSError, UnicodeDecodeError) as exc:
            raise LlmassayError(f"--key-file {file}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
        if not key:
            raise LlmassayError(f"--key-file {file}: the file is empty")
    elif given:
        logger.warning("warning: --key is visible to other users in the process list and shell history; "
                       "use --key-env VAR or --key-file FILE")
        key = given
    else:
        raise LlmassayError("give the watermark key with --key-env VAR or --key-file FILE")
    warn_if_default(key)
    return key


def warn_if_default(key: str) -> None:
    if key == DEFAULT_KEY:
        logger.warning(f"warning: the watermark key is the probe's public default ('{DEFAULT_KEY}'): anyone can "
                       "detect or forge this watermark; choose your own key")
