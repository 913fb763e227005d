"""One dedup tool run on the benchmark corpus, in its own process (so peak memory is the
tool's alone): `python bench/_dedup_tools.py TOOL CORPUS OUT_DIR [THREADS]`.

Writes OUT_DIR/TOOL.json: the wall time of the dedup itself (reading the corpus to having
the duplicate pairs or clusters; imports and interpreter start are excluded), and either
`pairs` (what the tool reports as duplicate pairs) or `clusters` (what it groups).
Document numbers are line numbers in CORPUS, 0-based.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import sys
import time
from pathlib import Path

THRESHOLD, NUM_PERM, SHINGLE = 0.8, 128, 5


def run_llmassay(corpus: Path, out: Path, verify: str = "exact") -> dict:
    from llmassay.audit import CorpusSpec, DedupSettings, audit_dedup

    start = time.perf_counter()
    settings = DedupSettings(THRESHOLD, NUM_PERM, SHINGLE, verify=verify)
    audit = audit_dedup(CorpusSpec((str(corpus),)), settings, batch_size=512)
    seconds = time.perf_counter() - start
    res = audit.result
    members: dict[int, list[int]] = {}
    for i, first in enumerate(res.exact_of.tolist()):
        members.setdefault(first, []).append(i)
    pairs = set()
    for group in members.values():
        pairs.update(itertools.combinations(group, 2))
    for a, b in res.pairs.tolist():
        pairs.update(tuple(sorted(p)) for p in itertools.product(members[a], members[b]))
    return {
        "seconds": seconds,
        "pairs": sorted(pairs),
        "clusters": res.clusters,
        "settings": {
            "bands": res.bands,
            "rows": res.rows,
            "candidates": res.candidates,
            "verified": len(res.pairs),
            "verify": verify,
        },
        "normaliser": "lowercase, Unicode punctuation → space, whitespace split (word 5-grams)",
    }


def run_llmassay_estimate(corpus: Path, out: Path) -> dict:
    """llmassay with `--verify estimate`: one pass, candidates checked by their MinHash estimate."""
    return run_llmassay(corpus, out, verify="estimate")


def run_datasketch(corpus: Path, out: Path) -> dict:
    """datasketch used directly, as its documentation shows: MinHash.bulk + MinHashLSH.query/insert."""
    from datasketch import MinHash, MinHashLSH

    from llmassay.audit.normalise import words

    start = time.perf_counter()
    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
    pairs = []
    index = 0
    with corpus.open(encoding="utf-8") as handle:
        while True:
            lines = list(itertools.islice(handle, 1000))
            if not lines:
                break
            shingle_sets = []
            for line in lines:
                w = words(json.loads(line)["text"])
                shingle_sets.append(
                    [" ".join(w[i : i + SHINGLE]).encode("utf-8") for i in range(max(1, len(w) - SHINGLE + 1))]
                )
            for m in MinHash.bulk(shingle_sets, num_perm=NUM_PERM):
                pairs.extend((j, index) for j in lsh.query(m))
                lsh.insert(index, m)
                index += 1
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "pairs": sorted(pairs),
        "settings": {"bands": lsh.b, "rows": lsh.r, "verification": "none (LSH candidates are the answer)"},
        "normaliser": "llmassay's (lowercase, punctuation → space, whitespace split), word 5-grams, sha1_hash32",
    }


def run_textdedup(corpus: Path, out: Path) -> dict:
    """text-dedup 0.4.0's MinHash (HF datasets map with multiprocessing, then band tables
    and union-find); its union-find is dumped with --debug and read back as clusters."""
    import pickle

    import text_dedup.minhash as tdm

    work = out / "textdedup_work"
    shutil.rmtree(work, ignore_errors=True)
    threads = os.environ.get("BENCH_THREADS", "2")
    argv = [
        "--path",
        "json",
        "--data_files",
        str(corpus),
        "--split",
        "train",
        "--cache_dir",
        str(work / "cache"),
        "--output",
        str(work / "output"),
        "--column",
        "text",
        "--batch_size",
        "10000",
        "--num_perm",
        str(NUM_PERM),
        "--threshold",
        str(THRESHOLD),
        "--ngram",
        str(SHINGLE),
        "--min_length",
        "0",
        "--num_proc",
        threads,
        "--debug",
    ]
    start = time.perf_counter()
    tdm.main.main(args=argv, standalone_mode=False)
    seconds = time.perf_counter() - start
    with (work / "output" / "uf.pkl").open("rb") as handle:
        uf = pickle.load(handle)
    groups: dict[int, list[int]] = {}
    for node in list(uf.parent):
        groups.setdefault(uf.find(node), []).append(node)
    from text_dedup.utils import optimal_param

    bands, rows = optimal_param(THRESHOLD, NUM_PERM, false_positive_weight=0.5, false_negative_weight=0.5)
    return {
        "seconds": seconds,
        "clusters": [sorted(g) for g in groups.values() if len(g) > 1],
        "settings": {"bands": bands, "rows": rows, "hash": "sha1 32-bit, (a*h+b) mod 2^61-1", "num_proc": threads},
        "normaliser": "lowercase, re.split(r'\\W') (every non-word character is a separator, so punctuation and "
        "extra spaces leave empty tokens inside shingles), word 5-grams",
    }


def run_datatrove(corpus: Path, out: Path) -> dict:
    """datatrove 0.10.1's MinHash pipeline (signatures → buckets → clusters) on a local
    executor with its defaults (14 buckets × 8 hashes, 64-bit xxhash, 5-grams)."""
    import struct

    from datatrove.executor.local import LocalPipelineExecutor
    from datatrove.pipeline.dedup import MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupSignature
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.readers import JsonlReader

    work = out / "datatrove_work"
    shutil.rmtree(work, ignore_errors=True)
    workers = int(os.environ.get("BENCH_THREADS", "2"))
    config = MinhashConfig(n_grams=SHINGLE)
    reader = JsonlReader(str(corpus.parent), glob_pattern=corpus.name, text_key="text", id_key="id")
    start = time.perf_counter()
    LocalPipelineExecutor(
        pipeline=[reader, MinhashDedupSignature(str(work / "sigs"), config=config)],
        tasks=1,
        workers=1,
        logging_dir=str(work / "logs1"),
    ).run()
    LocalPipelineExecutor(
        pipeline=[MinhashDedupBuckets(str(work / "sigs"), str(work / "buckets"), config=config)],
        tasks=config.num_buckets,
        workers=workers,
        logging_dir=str(work / "logs2"),
    ).run()
    LocalPipelineExecutor(
        pipeline=[
            MinhashDedupCluster(str(work / "buckets"), str(work / "remove_ids"), config=config, save_cluster_id=True)
        ],
        tasks=1,
        workers=1,
        logging_dir=str(work / "logs3"),
    ).run()
    seconds = time.perf_counter() - start
    groups: dict[int, list[int]] = {}
    clusters_file = work / "remove_ids" / "000000.clusters"
    if clusters_file.exists():
        raw = clusters_file.read_bytes()
        for doc, cid in struct.iter_unpack("<II", raw):
            groups.setdefault(cid, []).append(doc)
    return {
        "seconds": seconds,
        "clusters": [sorted(g) for g in groups.values() if len(g) > 1],
        "settings": {
            "bands": config.num_buckets,
            "rows": config.hashes_per_bucket,
            "hash": str(config.hash_config),
            "signature_tasks": 1,
            "bucket_workers": workers,
        },
        "normaliser": "datatrove TextNormConfig defaults: lowercase, punctuation removed, whitespace normalised, "
        "diacritics removed, numbers replaced; its English word tokenizer; word 5-grams",
    }


if __name__ == "__main__":
    tool, corpus_arg, out_arg = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    out_arg.mkdir(parents=True, exist_ok=True)
    result = globals()[f"run_{tool}"](corpus_arg, out_arg)
    (out_arg / f"{tool}.json").write_text(json.dumps(result))
