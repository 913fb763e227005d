import json
import os

import pytest

from llmassay.engine.store import RunStore, SampleLog
from llmassay.types import LlmassayError


def test_sample_log_appends_once_and_survives_a_torn_line(tmp_path):
    path = tmp_path / "p" / "log.jsonl"
    log = SampleLog(path)
    log.append([{"id": "a", "x": 1}, {"id": "b", "x": 2}])
    log.append([{"id": "a", "x": 99}])  # already finished: ignored
    with path.open("a") as handle:
        handle.write('{"id": "c", "x"')  # a process killed mid-write
    reopened = SampleLog(path)
    assert set(reopened.rows) == {"a", "b"} and reopened.rows["a"]["x"] == 1
    reopened.append([{"id": "c", "x": 3}])
    lines = path.read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["a", "b", "c"]


def test_results_files_are_written_atomically(tmp_path):
    store = RunStore(tmp_path / "out")
    results = store.write_results({"results": {}})
    samples = store.write_samples("t/1", [{"id": "a"}])
    assert json.loads(results.read_text()) == {"results": {}}
    assert samples.name.startswith("samples_t_1_") and samples.read_text() == '{"id": "a"}\n'
    assert not list((tmp_path / "out").glob("*.tmp"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_output_directory_is_a_clear_error(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(LlmassayError, match="not writable"):
        RunStore(ro)


def test_output_path_under_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(LlmassayError, match=r"file/out: cannot write"):
        RunStore(tmp_path / "file" / "out")


def test_disk_full_while_appending_keeps_finished_rows(tmp_path, monkeypatch):
    log = SampleLog(tmp_path / "log.jsonl")
    log.append([{"id": "a"}])

    def no_space(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(LlmassayError, match="No space left on device"):
        log.append([{"id": "b"}])
    monkeypatch.undo()
    assert "b" not in log.rows
    assert set(SampleLog(tmp_path / "log.jsonl").rows) >= {"a"}
