"""The llama-cpp-python adapter (backends/llama_internals.py), the one module that touches
its private internals: what it says about an untested or incompatible build (fast), and
every internal it uses, exercised against the installed build (slow: a real model, vocab and
weights). `scripts/check_llama_newest.sh` runs this file against the newest llama-cpp-python
in a separate venv; `test_the_newest_llama_cpp_python_passes_too` does when that venv exists."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from llmassay.backends import llama_internals as li
from llmassay.types import LlmassayError

ROOT = Path(__file__).resolve().parent.parent
NEWEST_VENV = Path(os.environ.get("LLMASSAY_LLAMA_NEWEST_VENV",
                                  Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "llmassay" / "venv-llama-newest"))


def test_an_untested_version_is_named_with_the_tested_ones():
    assert li.untested_note(li.TESTED_VERSIONS[0]) is None
    note = li.untested_note("9.9.9")
    assert note is not None and "9.9.9" in note and li.TESTED_VERSIONS[0] in note and "\n" not in note


def test_a_build_without_an_internal_is_one_line_naming_the_tested_versions():
    class Ctx:
        def kv_cache_seq_rm(self, *a): ...

    class Fake:  # has _ctx.kv_cache_seq_rm but nothing else
        _ctx = Ctx()

    with pytest.raises(LlmassayError) as info:
        li.check_internals(Fake())
    msg = str(info.value)
    assert "Llama._ctx.decode" in msg and li.TESTED_VERSIONS[0] in msg and "\n" not in msg


@pytest.fixture(scope="module")
def llm(smollm2_path):
    from llmassay.backends.llama_load import open_llama

    model = open_llama(str(smollm2_path), n_threads=1, n_ctx=256, n_batch=64, logits_all=False, verbose=False, seed=0)
    yield model
    model.close()


@pytest.mark.slow
def test_every_internal_works_on_the_installed_build(llm, smollm2_path):
    li.check_internals(llm)
    installed = li.installed_version()
    if installed not in li.TESTED_VERSIONS:  # the newest-version run: say so, test anyway
        print(li.untested_note(installed))
    tokens = llm.tokenize(b"The capital of France is", add_bos=True, special=False)
    n_vocab = llm.n_vocab()
    # decode_chunk + logits: rows only from logits_from, equal to llama-cpp-python's own eval
    li.kv_truncate(llm, 0)
    llm.n_tokens = 0
    wanted = li.decode_chunk(llm, tokens, 0, logits_from=len(tokens) - 2)
    rows = li.logits(llm, wanted, n_vocab).copy()
    assert wanted == 2 and rows.shape == (2, n_vocab) and np.isfinite(rows).all()
    ref = li.load(str(smollm2_path), n_threads=1, n_ctx=256, logits_all=True, verbose=False, seed=0)
    try:
        ref.eval(tokens)
        np.testing.assert_allclose(rows, np.asarray(ref.scores[len(tokens) - 2 : len(tokens)]), rtol=1e-4, atol=1e-3)
    finally:
        ref.close()
    # the KV cache can be cut back and the next token decoded after the prefix
    li.kv_truncate(llm, len(tokens) - 1)
    again = li.decode_chunk(llm, tokens[-1:], len(tokens) - 1, logits_from=len(tokens) - 1)
    np.testing.assert_allclose(li.logits(llm, again, n_vocab)[0], rows[-1], rtol=1e-4, atol=1e-3)
    # grammars, end of generation, perf counters, the schema converter, quantisation types
    assert li.grammar_parses(llm, 'root ::= "yes" | "no"') and not li.grammar_parses(llm, "root ::= (")
    assert li.grammar('root ::= "yes"') is not None
    assert li.is_end_of_generation(llm, llm.token_eos()) and not li.is_end_of_generation(llm, tokens[-1])
    ctx = li.perf_context(llm)
    li.perf_reset(ctx)
    li.kv_truncate(llm, 0)
    assert li.perf_read(ctx).t_p_eval_ms == 0.0  # nothing since the reset
    assert li.decode_chunk(llm, tokens[:3], 0, logits_from=2) == 1
    li.logits(llm, 1, n_vocab)  # reading the logits waits for the decode, which the counters then hold
    assert li.perf_read(ctx).t_p_eval_ms > 0.0
    from llmassay.backends._gbnf import compile_schema

    gbnf = compile_schema({"type": "object", "properties": {"n": {"type": "integer", "minimum": 1, "maximum": 12}},
                           "required": ["n"]}).gbnf
    assert "root ::=" in gbnf and li.grammar_parses(llm, gbnf)
    assert li.ftype("q8_0") == 7 and "q4_k_m" in li.ftype_names()
    assert li.system_info() and li.prompt_lookup_draft(4) is not None
    assert li.load_vocab(str(smollm2_path)).n_vocab() == n_vocab


@pytest.mark.slow
def test_the_newest_llama_cpp_python_passes_too():
    python = NEWEST_VENV / "bin" / "python"
    if not python.exists():
        pytest.skip(f"no venv with the newest llama-cpp-python at {NEWEST_VENV} (scripts/check_llama_newest.sh "
                    "says how to make one; building it takes ~6 minutes)")
    out = subprocess.run(["bash", str(ROOT / "scripts" / "check_llama_newest.sh")], capture_output=True, text=True,
                         env={**os.environ, "LLMASSAY_LLAMA_NEWEST_VENV": str(NEWEST_VENV)}, timeout=900)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
