"""Corpus readers: JSONL, gzip, plain text (per line / per file), Parquet; bad lines are
reported with file:line and skipped, bad arguments are one-line errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from llmassay.audit.normalise import normalise, words
from llmassay.audit.readers import CorpusSpec, ReadProblems, read_corpus
from llmassay.cli import main
from llmassay.types import LlmassayError


def test_normalisation_as_in_the_papers() -> None:
    assert normalise("  Hello,   WORLD!\tState-of-the-art «quotes» … ") == "hello world state of the art quotes"
    assert words("x+y = 2") == ["x+y", "=", "2"]  # symbols are not punctuation


def test_jsonl_text_and_gzip(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"text": "one"}\n\n{"text": 5}\n{"text": "two", "id": "t2"}\n')
    with gzip.open(tmp_path / "b.jsonl.gz", "wt") as handle:
        handle.write('{"text": "three"}\n')
    (tmp_path / "c.txt").write_bytes(b"four\n\xff\xfe broken\nfive\n")
    problems = ReadProblems()
    docs = list(read_corpus(CorpusSpec((str(tmp_path / "*.jsonl*"), str(tmp_path / "c.txt")), id_field="id"), problems))
    assert [(d.index, d.text) for d in docs] == [(0, "one"), (1, "two"), (2, "three"), (3, "four"), (4, "five")]
    assert docs[1].doc_id == "t2" and docs[3].doc_id == f"{tmp_path / 'c.txt'}:1"
    assert problems.examples == [
        f"{tmp_path / 'a.jsonl'}:3: field 'text' is not a string (int); skipped",
        f"{tmp_path / 'c.txt'}:2: not valid UTF-8; skipped",
    ]


def test_text_one_document_per_file(tmp_path: Path) -> None:
    (tmp_path / "d1.txt").write_text("a\nb\n")
    (tmp_path / "d2.txt").write_text("c")
    docs = list(read_corpus(CorpusSpec((str(tmp_path / "*.txt"),), text_mode="file")))
    assert [(d.doc_id, d.text) for d in docs] == [(str(tmp_path / "d1.txt"), "a\nb\n"), (str(tmp_path / "d2.txt"), "c")]


def test_parquet(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"content": ["x y", None, "z"], "n": [1, 2, 3]}), tmp_path / "p.parquet")
    problems = ReadProblems()
    docs = list(read_corpus(CorpusSpec((str(tmp_path / "p.parquet"),), text_field="content"), problems))
    assert [(d.doc_id, d.text, d.record["n"]) for d in docs] == [
        (f"{tmp_path / 'p.parquet'}#row0", "x y", 1),
        (f"{tmp_path / 'p.parquet'}#row2", "z", 3),
    ]
    assert problems.count == 1
    with pytest.raises(LlmassayError, match="no column 'text'"):
        list(read_corpus(CorpusSpec((str(tmp_path / "p.parquet"),))))
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(LlmassayError, match="not a readable Parquet file"):
        list(read_corpus(CorpusSpec((str(tmp_path / "bad.parquet"),))))


def test_missing_files_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(LlmassayError, match="no file matches"):
        CorpusSpec((str(tmp_path / "*.jsonl"),)).files()
    with pytest.raises(LlmassayError, match="is a directory"):
        CorpusSpec((str(tmp_path),)).files()
    whole = gzip.compress(b'{"text": "a"}\n' * 100)
    (tmp_path / "cut.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(LlmassayError, match="corrupt compressed file"):
        list(read_corpus(CorpusSpec((str(tmp_path / "cut.jsonl.gz"),))))
    assert main(["audit", "dedup", "--corpus", str(tmp_path / "none.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such file" in err


def test_an_interrupted_rewrite_leaves_no_truncated_copy(tmp_path: Path) -> None:
    from llmassay.audit.stream import write_corpus

    (tmp_path / "c.jsonl").write_text("".join(f'{{"text": "doc {i}"}}\n' for i in range(5)))
    corpus = CorpusSpec((str(tmp_path / "c.jsonl"),))
    target = tmp_path / "out" / "redacted.jsonl"
    write_corpus(corpus, target, transform=lambda d: d.text.upper())
    assert target.read_text().splitlines()[4] == '{"text": "DOC 4"}'

    def interrupt(doc):
        if doc.index == 3:
            raise KeyboardInterrupt
        return "x"

    with pytest.raises(KeyboardInterrupt):
        write_corpus(corpus, target, transform=interrupt)
    assert target.read_text().splitlines()[4] == '{"text": "DOC 4"}'  # the finished copy is untouched
    assert sorted(p.name for p in target.parent.iterdir()) == ["redacted.jsonl"]  # no .part left



def test_jsonl_zst_as_dolma_ships_it(tmp_path: Path) -> None:
    """`.jsonl.zst` (Dolma, RedPajama): several concatenated frames, read in order; a file cut
    inside a frame is a one-line error, not a silently shorter corpus."""
    zstandard = pytest.importorskip("zstandard")
    compressor = zstandard.ZstdCompressor()
    frames = [compressor.compress("".join(f'{{"text": "doc {i}", "id": "d{i}"}}\n' for i in range(k, k + 3)).encode())
              for k in (0, 3)]
    (tmp_path / "part-0.jsonl.zst").write_bytes(b"".join(frames))
    (tmp_path / "notes.txt.zst").write_bytes(compressor.compress("caf\u00e9 line\n\nsecond\n".encode()))
    docs = list(read_corpus(CorpusSpec((str(tmp_path / "part-0.jsonl.zst"), str(tmp_path / "notes.txt.zst")), id_field="id")))
    assert [(d.doc_id, d.text) for d in docs] == [(f"d{i}", f"doc {i}") for i in range(6)] + [
        (f"{tmp_path / 'notes.txt.zst'}:1", "caf\u00e9 line"), (f"{tmp_path / 'notes.txt.zst'}:3", "second")]
    big = compressor.compress("".join(f'{{"text": "{i} {"x" * (i % 50)}"}}\n' for i in range(20_000)).encode())
    (tmp_path / "cut.jsonl.zst").write_bytes(big[: len(big) // 2])
    with pytest.raises(LlmassayError, match=r"cut\.jsonl\.zst: corrupt compressed file \(the file ends inside a zstd frame"):
        list(read_corpus(CorpusSpec((str(tmp_path / "cut.jsonl.zst"),))))
    (tmp_path / "junk.jsonl.zst").write_bytes(b"not zstd" * 10)
    with pytest.raises(LlmassayError, match=r"junk\.jsonl\.zst: corrupt compressed file"):
        list(read_corpus(CorpusSpec((str(tmp_path / "junk.jsonl.zst"),))))


def test_zst_without_zstandard_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "a.jsonl.zst").write_bytes(b"\x28\xb5\x2f\xfd")
    monkeypatch.setitem(__import__("sys").modules, "zstandard", None)  # as if not installed
    assert main(["audit", "dedup", "--corpus", str(tmp_path / "a.jsonl.zst")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs zstandard: pip install 'llmassay[audit]'" in err
