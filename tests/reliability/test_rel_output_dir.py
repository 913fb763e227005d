"""Output directory faults: unwritable, missing, read-only, disk full, broken cache file.

Tests run as root, so chmod cannot make a directory read-only. Faults are injected by
wrapping file opens (a write that stops half way with ENOSPC or EROFS, as a full or
read-only file system does), by paths that cannot be directories, and, where this
machine allows mounting, on a real tiny tmpfs filled up or remounted read-only at a
chosen request. Every case: a clear one-line LlmassayError, the progress file still
parseable with every previously finished row intact, and a rerun that completes with
the same results as an undisturbed run.
"""

from __future__ import annotations

import errno
import json
import os
import pathlib
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fake_openai import FakeOpenAI
from llmassay.backends.openai_compat import SELF_CHECK_PROMPT
from llmassay.cli import main
from llmassay.engine import cache as cache_module
from llmassay.engine.store import SampleLog
from llmassay.evaluation import RunConfig, evaluate
from llmassay.types import LlmassayError
from reliability_helpers import one_line, progress_log

pytestmark = pytest.mark.reliability

CATEGORY = "output directory faults"
LIMIT = 8


@pytest.fixture()
def fake():
    with FakeOpenAI() as server:
        yield server


def config(fake: FakeOpenAI, out: Path, cache: Path | None = None) -> RunConfig:
    return RunConfig(model="openai/fake", tasks=["arith_sample"], limit=LIMIT, output_path=str(out),
                     use_cache=cache is not None, cache_path=str(cache) if cache else None, chunk_size=2,
                     model_args={"base_url": fake.base_url, "max_retries": 0, "timeout": 30.0})


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> list[bytes]:
    """Sample lines of an undisturbed run: what every faulted run must end up with."""
    with FakeOpenAI() as server:
        out = evaluate(config(server, tmp_path_factory.mktemp("clean") / "o"))
        return out.sample_paths[0].read_bytes().splitlines(keepends=True)


def kept_lines(out: Path) -> list[bytes]:
    """The progress file's lines as the next run sees them (a torn tail is cut on reopen)."""
    log = progress_log(out)
    if log is None:
        return []
    SampleLog(log)  # reopening is what a rerun does: it must parse and cut a torn tail
    return log.read_bytes().splitlines(keepends=True)


def assert_rerun_completes(fake: FakeOpenAI, cfg: RunConfig, clean: list[bytes], finished: int) -> None:
    sent = len(fake.requests)
    done = evaluate(cfg)
    assert done.sample_paths[0].read_bytes().splitlines(keepends=True) == clean
    assert len(fake.requests) - sent == LIMIT - finished, "finished samples were computed again"
    assert json.loads(done.results_path.read_text())["results"]["arith_sample"]["accuracy"]["exact_match"]["n"] == LIMIT
    assert not list(Path(cfg.output_path).glob("*.tmp"))


def assert_intact(out: Path, clean: list[bytes], at_least: int) -> int:
    lines = kept_lines(out)
    assert len(lines) >= at_least, f"{len(lines)} rows kept, {at_least} were finished"
    by_id = {json.loads(line)["id"]: line for line in clean}
    for line in lines:
        assert line == by_id[json.loads(line)["id"]], "a kept row differs from the undisturbed run"
    assert len({json.loads(line)["id"] for line in lines}) == len(lines)
    return len(lines)


# -- fault injection -------------------------------------------------------------------------
class _FailingFile:
    """A file whose write stores the first half of the data and then fails, as a file
    system that runs out of space (or turns read-only) in the middle of a write does."""

    def __init__(self, inner: Any, err: int, at: str, doomed_fds: set[int]) -> None:
        self._inner, self._err, self._at = inner, err, at
        if at == "fsync":
            doomed_fds.add(inner.fileno())

    def write(self, data: str) -> int:
        if self._at == "write":
            self._inner.write(data[: len(data) // 2])
            self._inner.flush()
            raise OSError(self._err, os.strerror(self._err))
        return self._inner.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __enter__(self) -> _FailingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._inner.close()


def inject(monkeypatch: pytest.MonkeyPatch, select: Callable[[Path, str], bool], err: int, at: str = "write",
           skip: int = 0) -> dict[str, int]:
    """Files opened for writing that `select` picks fail (after `skip` good opens) at `at`:
    'write' (half the data lands, then the error) or 'fsync'."""
    original_open, original_fsync = pathlib.Path.open, os.fsync
    state = {"opened": 0, "failed": 0}
    doomed: set[int] = set()

    def fake_open(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = original_open(self, mode, *args, **kwargs)
        if any(m in mode for m in "wax") and select(self, mode):
            state["opened"] += 1
            if state["opened"] > skip:
                state["failed"] += 1
                return _FailingFile(handle, err, at, doomed)
        return handle

    def fake_fsync(fd: int) -> None:
        if fd in doomed:
            doomed.discard(fd)
            raise OSError(err, os.strerror(err))
        original_fsync(fd)

    monkeypatch.setattr(pathlib.Path, "open", fake_open)
    monkeypatch.setattr(os, "fsync", fake_fsync)
    return state


def is_progress(path: Path, mode: str) -> bool:
    return path.parent.parent.name == ".llmassay" and mode.startswith("a")


# -- unwritable and missing directories ---------------------------------------------------------
def test_output_path_under_a_regular_file(tmp_path, capsys, fake, reliability):
    with reliability.case(CATEGORY, "output path under a regular file (ENOTDIR): exit 2, one line, nothing sent"):
        (tmp_path / "file").write_text("x")
        code = main(["run", "--model", "openai/fake", "--model-args", f"base_url={fake.base_url}",
                     "--tasks", "arith_sample", "--limit", "2", "--output-path", str(tmp_path / "file" / "out")])
        err = capsys.readouterr().err.strip()
        assert code == 2 and one_line(err).startswith("error: ")
        assert "file/out: cannot write (Not a directory); finished samples are kept" in err
        assert fake.seen() == 0


def test_missing_nested_output_directory_is_created(tmp_path, fake, clean, reliability):
    with reliability.case(CATEGORY, "missing nested output directory: created, run completes"):
        out = tmp_path / "a" / "b" / "c"
        done = evaluate(config(fake, out))
        assert out.is_dir() and done.results_path.parent == out
        assert done.sample_paths[0].read_bytes().splitlines(keepends=True) == clean


def test_read_only_file_system_at_start(tmp_path, fake, monkeypatch, reliability):
    with reliability.case(CATEGORY, "read-only file system (EROFS creating the directory): one line, nothing sent"):
        original = pathlib.Path.mkdir

        def mkdir(self: Path, *args: Any, **kwargs: Any) -> None:
            if tmp_path in self.parents or self == tmp_path / "o":
                raise OSError(errno.EROFS, os.strerror(errno.EROFS))
            original(self, *args, **kwargs)

        monkeypatch.setattr(pathlib.Path, "mkdir", mkdir)
        with pytest.raises(LlmassayError) as info:
            evaluate(config(fake, tmp_path / "o"))
        assert "cannot write (Read-only file system)" in one_line(str(info.value))
        assert fake.seen() == 0


def test_existing_directory_without_write_permission(tmp_path, fake, monkeypatch, reliability):
    with reliability.case(CATEGORY, "existing directory without write permission: one line, nothing sent"):
        out = tmp_path / "o"
        out.mkdir()
        original = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == out else original(p, mode, **kw))
        with pytest.raises(LlmassayError) as info:
            evaluate(config(fake, out))
        assert one_line(str(info.value)) == f"{out}: output directory is not writable"
        assert fake.seen() == 0


def test_progress_directory_blocked_by_a_file(tmp_path, fake, clean, reliability):
    with reliability.case(CATEGORY, "progress directory (.llmassay) is a regular file: one line, rerun completes"):
        out = tmp_path / "o"
        out.mkdir()
        (out / ".llmassay").write_text("not a directory")
        with pytest.raises(LlmassayError) as info:
            evaluate(config(fake, out))
        assert "cannot write (Not a directory)" in one_line(str(info.value))
        assert info.value.exit_code == 2  # a path the user can fix: a usage error
        assert fake.seen() == 0
        (out / ".llmassay").unlink()
        assert_rerun_completes(fake, config(fake, out), clean, 0)


# -- disk full / read-only in the middle of a run -----------------------------------------------
@pytest.mark.parametrize(
    "err,at,label",
    [
        (errno.ENOSPC, "write", "disk full in the middle of a progress-file append (half a chunk written)"),
        (errno.ENOSPC, "fsync", "disk full at the fsync of a progress-file append"),
        (errno.EROFS, "write", "file system turns read-only during a progress-file append"),
        (errno.EIO, "write", "I/O error during a progress-file append"),
    ],
)
def test_fault_while_appending_progress(tmp_path, fake, clean, monkeypatch, reliability, err, at, label):
    with reliability.case(CATEGORY, f"{label}: one line, finished rows intact, rerun completes"):
        out = tmp_path / "o"
        state = inject(monkeypatch, is_progress, err, at=at, skip=2)  # chunks 1 and 2 land, chunk 3 fails
        with pytest.raises(LlmassayError) as info:
            evaluate(config(fake, out))
        message = one_line(str(info.value))
        assert os.strerror(err) in message and "finished samples are kept" in message
        assert info.value.exit_code == 1  # the machine failed a valid command: a runtime failure
        assert state["failed"] == 1
        monkeypatch.undo()
        assert not list(out.glob("results_*.json")) and not list(out.glob("samples_*"))
        kept = assert_intact(out, clean, at_least=4)
        assert_rerun_completes(fake, config(fake, out), clean, kept)


@pytest.mark.parametrize("target", ["samples", "results"])
@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EROFS])
def test_fault_while_writing_final_files(tmp_path, fake, clean, monkeypatch, reliability, target, err):
    name = {errno.ENOSPC: "disk full", errno.EROFS: "read-only file system"}[err]
    with reliability.case(CATEGORY, f"{name} writing the {target} file: one line, no partial file, rerun completes"):
        out = tmp_path / "o"
        inject(monkeypatch, lambda p, mode: p.name.startswith(f"{target}_") and p.name.endswith(".tmp"), err)
        with pytest.raises(LlmassayError) as info:
            evaluate(config(fake, out))
        assert os.strerror(err) in one_line(str(info.value)) and info.value.exit_code == 1
        monkeypatch.undo()
        assert not list(out.glob("*.tmp")) and not list(out.glob("results_*.json"))
        for path in out.glob("samples_*.jsonl"):  # written before the results file failed: whole
            assert path.read_bytes().splitlines(keepends=True) == clean
        assert assert_intact(out, clean, at_least=LIMIT) == LIMIT
        assert_rerun_completes(fake, config(fake, out), clean, LIMIT)


# -- the cache file ----------------------------------------------------------------------------
class _FullDisk:
    """A sqlite3 connection whose writes fail as a full disk makes them fail."""

    def __init__(self, conn: sqlite3.Connection, good_writes: int) -> None:
        self._conn, self._left = conn, good_writes

    def executemany(self, *args: Any) -> Any:
        if self._left <= 0:
            raise sqlite3.OperationalError("database or disk is full")
        self._left -= 1
        return self._conn.executemany(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def test_disk_full_in_the_cache(tmp_path, fake, clean, monkeypatch, reliability):
    with reliability.case(CATEGORY, "disk full writing the SQLite cache: one line, rows intact, rerun completes"):
        out, cache = tmp_path / "o", tmp_path / "c.sqlite"
        original = cache_module.RequestCache._open
        monkeypatch.setattr(cache_module.RequestCache, "_open",
                            lambda self, timeout: _FullDisk(original(self, timeout), good_writes=8))  # 2 per answer: it and its time
        with pytest.raises(LlmassayError) as info:
            evaluate(config(fake, out, cache))
        assert "cannot write (database or disk is full)" in one_line(str(info.value))
        assert info.value.exit_code == 1
        monkeypatch.undo()
        kept = assert_intact(out, clean, at_least=4)
        conn = sqlite3.connect(cache)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == 4
        conn.close()
        assert_rerun_completes(fake, config(fake, out, cache), clean, kept)


@pytest.mark.parametrize(
    "label,prepare,pattern",
    [
        ("cache file that is not a SQLite database", lambda p: p.write_bytes(b"not a database\n" * 300),
         "cannot open (file is not a database)"),
        ("cache path under a regular file", lambda p: p.parent.joinpath("f").write_text("x"),
         "cannot open"),
    ],
)
def test_unusable_cache_file(tmp_path, fake, reliability, label, prepare, pattern):
    with reliability.case(CATEGORY, f"{label}: one line, nothing sent"):
        cache = tmp_path / "c.sqlite"
        prepare(cache)
        if label.startswith("cache path under"):
            cache = tmp_path / "f" / "c.sqlite"
        with pytest.raises(LlmassayError) as info:
            evaluate(config(fake, tmp_path / "o", cache))
        assert pattern in one_line(str(info.value))
        assert fake.seen() == 0


# -- a real tiny file system (where this machine allows mounting one) ------------------------
@pytest.fixture()
def tmpfs(tmp_path):
    mount_point = tmp_path / "mnt"
    mount_point.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()[:100]}")
    try:
        yield mount_point
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(mount_point)], capture_output=True)
        if subprocess.run(["umount", str(mount_point)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def at_request(fake: FakeOpenAI, n: int, action: Callable[[], None]) -> None:
    """Run `action` inside the server when it answers the run's request n (the backend's
    identity requests at start — GETs and the greedy self-check — are not the run's work and
    are not counted, as `fake.requests` does not count them): the run waits meanwhile."""
    original = fake.answer
    count = {"n": 0}

    def answer(path: str, body: dict[str, Any], fault: str) -> Any:
        if body.get("prompt") != SELF_CHECK_PROMPT or body.get("echo"):
            count["n"] += 1
            if count["n"] == n:
                action()
        return original(path, body, fault)

    fake.answer = answer  # type: ignore[method-assign]


def fill(directory: Path) -> Path:
    ballast = directory / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 512)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return ballast


@pytest.mark.slow
@pytest.mark.parametrize("use_cache", [False, True], ids=["no-cache", "cache-on-the-same-fs"])
def test_real_tmpfs_runs_out_of_space(tmpfs, fake, clean, reliability, use_cache):
    with reliability.case(CATEGORY, "real 256 KiB tmpfs filled at request 5" + (" (cache on it too)" if use_cache else "")
                          + ": one line, rows intact, rerun completes after space is freed") as case:
        out = tmpfs / "o"
        cfg = config(fake, out, tmpfs / "c.sqlite" if use_cache else None)
        ballast: list[Path] = []
        at_request(fake, 5, lambda: ballast.append(fill(tmpfs)))
        with pytest.raises(LlmassayError) as info:
            evaluate(cfg)
        message = case.detail = one_line(str(info.value))
        assert "No space left on device" in message or "database or disk is full" in message, message
        del fake.answer
        kept = assert_intact(out, clean, at_least=4)
        ballast[0].unlink()
        if use_cache:
            conn = sqlite3.connect(tmpfs / "c.sqlite")
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            conn.close()
        sent = len(fake.requests)
        done = evaluate(cfg)
        assert done.sample_paths[0].read_bytes().splitlines(keepends=True) == clean
        assert len(fake.requests) - sent <= LIMIT - kept


@pytest.mark.slow
def test_real_tmpfs_remounted_read_only(tmpfs, fake, clean, reliability):
    with reliability.case(CATEGORY, "real tmpfs remounted read-only at request 5: one line, rows intact, "
                                    "rerun completes once writable"):
        out = tmpfs / "o"

        def remount_ro() -> None:
            subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True, capture_output=True)

        at_request(fake, 5, remount_ro)
        with pytest.raises(LlmassayError) as info:
            evaluate(config(fake, out))
        assert "cannot write (Read-only file system); finished samples are kept" in one_line(str(info.value))
        del fake.answer
        kept = assert_intact(out, clean, at_least=4)
        subprocess.run(["mount", "-o", "remount,rw", str(tmpfs)], check=True, capture_output=True)
        assert_rerun_completes(fake, config(fake, out), clean, kept)
