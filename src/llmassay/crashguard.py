"""A native crash (segfault, abort) in the CLI says where it happened and what to check.

Python's faulthandler writes the Python stack of a fatal signal, but nothing can run in
the dying process after it, so a one-line hint cannot follow it there. A small watcher
process, forked before any work, waits for the CLI process to end: if faulthandler wrote
anything, the watcher copies it to stderr and adds the hint. The CLI keeps its PID, so
`kill -9` still kills the run itself (the watcher then finds nothing and prints nothing),
and rows already written stay on disk for the next run to resume.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import tempfile
from typing import IO

HINT = ("llmassay: the process crashed in native code (the stack is above); finished rows are kept and the same "
        "command resumes. If it is llama.cpp, run `python -m llmassay.selfcheck`: it names this CPU's features and "
        "the fix (AMX: use_extra_bufts=false or a build without AMX)")
_MAX_REPORT = 1 << 20
_kept: list[IO[str]] = []  # faulthandler needs its file object alive


def install() -> None:
    """Turn on faulthandler; on Linux, also fork the watcher that adds the hint."""
    if not hasattr(os, "fork") or not hasattr(os, "pread"):
        faulthandler.enable()
        return
    fd, path = tempfile.mkstemp(prefix="llmassay-fault-")
    os.unlink(path)  # both processes keep it open through fd
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        os.close(fd)
        faulthandler.enable()
        return
    if pid == 0:
        _watch(read_end, write_end, fd)
    os.close(read_end)
    report = os.fdopen(fd, "w")
    _kept.append(report)
    _kept.append(os.fdopen(write_end, "wb"))  # open until this process ends, however it ends
    faulthandler.enable(file=report)


def _watch(read_end: int, write_end: int, fd: int) -> None:
    """The watcher: never returns. Ctrl-C goes to the whole process group; it is the CLI's."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.close(write_end)
    try:
        while os.read(read_end, 1):
            pass
        report = os.pread(fd, _MAX_REPORT, 0)
        if report:
            os.write(2, report + b"\n" + HINT.encode() + b"\n")
    finally:
        os._exit(0)

