"""Every use of llama-cpp-python in llmassay goes through this module: its import (an extra,
`pip install 'llmassay[llamacpp]'`) and the private internals the code reaches into.

Why the pin in pyproject.toml is exact: llama-cpp-python's public `Llama` API cannot decode a
batch with logits for chosen positions only, truncate the KV cache, read a context's perf
counters or test-parse a grammar, so this module uses `llm._ctx`, `llm._batch`,
`llm._model.vocab`, `llama_cpp.llama_cpp.llama_model_default_params` and the JSON-schema
converter's private hooks (`_visit_pattern`, `_add_rule`, `_add_primitive`). None of these is
a promise across releases. Keeping them here means a new llama-cpp-python is checked in one
file (`tests/test_llama_internals.py` against the pinned build; `scripts/check_llama_newest.sh`
against the newest one in a separate venv), and a build without them fails in one line
naming the versions this module was tested on, instead of an AttributeError deep in a run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from types import ModuleType
from typing import Any

import numpy as np

from llmassay.types import LlmassayError

# The versions this adapter was run against (tests/test_llama_internals.py, slow tier). The
# first is the one pyproject.toml pins; a test keeps the two in step.
TESTED_VERSIONS = ("0.3.36",)
EXTRA = "pip install 'llmassay[llamacpp]'"
# What `check_internals` looks for on a loaded model: (attribute path, what uses it).
INTERNALS = (
    ("_ctx.kv_cache_seq_rm", "KV-cache truncation (prefix reuse)"),
    ("_ctx.decode", "batched scoring"),
    ("_ctx.get_logits", "batched scoring"),
    ("_ctx.ctx", "perf counters"),
    ("_batch.batch", "batched scoring"),
    ("_model.vocab", "grammar checks, end-of-generation"),
)

log = logging.getLogger("llmassay")
_params_lock = threading.Lock()


# -- the import -----------------------------------------------------------------------------
def lib() -> ModuleType:
    """The `llama_cpp` module, or a one-line LlmassayError naming the extra to install."""
    try:
        import llama_cpp
    except ImportError as exc:
        raise LlmassayError(f"llama.cpp models need llama-cpp-python ({exc}): {EXTRA}") from None
    return llama_cpp


def installed_version() -> str | None:
    """llama-cpp-python's version, None where it is not importable (no import error raised)."""
    try:
        return str(lib().__version__)
    except LlmassayError:
        return None


def untested_note(version: str | None = None) -> str | None:
    """A sentence when `version` (default: the installed one) is not one this adapter was
    tested on; None when it is (or nothing is installed)."""
    version = installed_version() if version is None else version
    if version is None or version in TESTED_VERSIONS:
        return None
    return (f"llama-cpp-python {version} is untested with llmassay (tested: {', '.join(TESTED_VERSIONS)}); "
            "llmassay reaches into its private internals, which may have changed")


@lru_cache(maxsize=1)
def warn_if_untested() -> None:
    """Log `untested_note` once per process (called when a model loads)."""
    note = untested_note()
    if note:
        log.warning(note)


def check_internals(llm: Any) -> None:
    """A one-line LlmassayError when a loaded `Llama` lacks an internal this module uses."""
    for path, use in INTERNALS:
        obj = llm
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                raise LlmassayError(
                    f"llama-cpp-python {installed_version()} has no Llama.{path} (used for {use}); llmassay was "
                    f"tested on {', '.join(TESTED_VERSIONS)}: pip install 'llama-cpp-python=={TESTED_VERSIONS[0]}'")


# -- loading --------------------------------------------------------------------------------
@contextmanager
def _model_params(use_extra_bufts: bool) -> Iterator[None]:
    """`Llama()` takes no `use_extra_bufts`: swap the library's default model params while
    it loads (see `llama_load`)."""
    if use_extra_bufts:
        yield
        return
    low = lib().llama_cpp
    with _params_lock:
        original = low.llama_model_default_params

        def without_repack() -> Any:
            params = original()
            params.use_extra_bufts = False
            return params

        low.llama_model_default_params = without_repack
        try:
            yield
        finally:
            low.llama_model_default_params = original


def load(model_path: str, *, use_extra_bufts: bool = True, **kwargs: Any) -> Any:
    """`llama_cpp.Llama(model_path, **kwargs)`, repacking weights or not."""
    llama_cpp = lib()
    warn_if_untested()
    with _model_params(use_extra_bufts):
        return llama_cpp.Llama(model_path=str(model_path), **kwargs)


def supports_gpu_offload() -> bool:
    """Whether this llama.cpp build can offload layers to a GPU (CUDA, Metal, Vulkan, …)."""
    return bool(lib().llama_supports_gpu_offload())


def load_vocab(model_path: str) -> Any:
    """A `Llama` holding only the GGUF's vocabulary and metadata (no weights)."""
    return lib().Llama(model_path=str(model_path), vocab_only=True, verbose=False)


def system_info() -> str | None:
    """llama.cpp's `system_info` line, None where llama-cpp-python is absent or fails."""
    try:
        return str(lib().llama_print_system_info().decode("utf-8", errors="replace").strip())
    except Exception:  # noqa: BLE001 - an absent or broken install is a fact to record, not a crash
        return None


# -- decoding -------------------------------------------------------------------------------
def kv_truncate(llm: Any, start: int) -> None:
    """Drop every KV-cache cell at position ≥ `start` (all sequences)."""
    llm._ctx.kv_cache_seq_rm(-1, start, -1)


def decode_chunk(llm: Any, tokens: list[int], n_past: int, logits_from: int) -> int:
    """Decode `tokens` at positions n_past… in one llama_decode, asking for logits only at
    positions ≥ `logits_from`; returns how many rows of logits that produced (`logits`)."""
    batch = llm._batch.batch
    wanted = 0
    for i, token in enumerate(tokens):
        batch.token[i] = token
        batch.pos[i] = n_past + i
        batch.seq_id[i][0] = 0
        batch.n_seq_id[i] = 1
        flag = n_past + i >= logits_from
        batch.logits[i] = flag
        wanted += flag
    batch.n_tokens = len(tokens)
    llm._ctx.decode(llm._batch)
    return wanted


def logits(llm: Any, rows: int, n_vocab: int) -> np.ndarray:
    """The last decode's `rows` rows of logits: a view of llama.cpp's buffer (copy to keep)."""
    return np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(rows * n_vocab,)).reshape(rows, n_vocab)


def is_end_of_generation(llm: Any, token: int) -> bool:
    return bool(lib().llama_vocab_is_eog(llm._model.vocab, token))


def prompt_lookup_draft(num_pred_tokens: int) -> Any:
    from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

    lib()
    return LlamaPromptLookupDecoding(num_pred_tokens=num_pred_tokens)


def logits_processors(*fns: Callable[[Any, Any], Any]) -> Any:
    return lib().LogitsProcessorList(list(fns))


# -- grammars -------------------------------------------------------------------------------
def grammar_parses(llm: Any, gbnf: str) -> bool:
    """Whether llama.cpp's parser accepts `gbnf` over this model's vocabulary (its complaint
    goes to stderr: capture it). llama-cpp-python parses only when sampling starts, where a
    failure is a null sampler and a segmentation fault."""
    llama_cpp = lib()
    sampler = llama_cpp.llama_sampler_init_grammar(llm._model.vocab, gbnf.encode("utf-8"), b"root")
    if not sampler:
        return False
    llama_cpp.llama_sampler_free(sampler)
    return True


def grammar(gbnf: str) -> Any:
    return lib().LlamaGrammar.from_string(gbnf, verbose=False)


class SchemaVisitor:
    """What `schema_grammar` asks of its caller: `visit` returns a rule name for a schema it
    handles itself (None: the base converter's), `pattern` rewrites a regex before the base
    converter reads it, and `char_rule` replaces the base converter's JSON string character."""

    char_rule: str | None = None

    def visit(self, conv: Converter, schema: Any, name: str) -> str | None:
        return None

    def pattern(self, pattern: str) -> str:
        return pattern


class Converter:
    """The calls a `SchemaVisitor` may make back into the converter."""

    def __init__(self, base: Any) -> None:
        self._base = base

    def add_rule(self, name: str, rule: str) -> str:
        return str(self._base._add_rule(name, rule))

    def visit_pattern(self, pattern: str, name: str) -> str:
        """A rule for a regex (rewritten by the visitor's `pattern` first)."""
        return str(self._base._visit_pattern(pattern, name))


@lru_cache(maxsize=1)
def _converter_class() -> type:
    from llama_cpp.llama_grammar import SchemaConverter

    lib()

    class _Hooked(SchemaConverter):  # type: ignore[misc,valid-type]
        def __init__(self, visitor: SchemaVisitor) -> None:
            super().__init__(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
            self._visitor, self._handle = visitor, Converter(self)

        def visit(self, schema: Any, name: str) -> str:
            own = self._visitor.visit(self._handle, schema, name)
            return str(super().visit(schema, name)) if own is None else own

        def _visit_pattern(self, pattern: str, name: str) -> str:
            return str(super()._visit_pattern(self._visitor.pattern(pattern), name))

        def _add_primitive(self, name: str, rule: Any) -> str:
            if name == "char" and self._visitor.char_rule is not None:
                rule = type(rule)(self._visitor.char_rule, [])
            return str(super()._add_primitive(name, rule))

    return _Hooked


def schema_grammar(schema: dict[str, Any], visitor: SchemaVisitor) -> str:
    """GBNF for `schema` (refs resolved; it is modified) by llama-cpp-python's converter with
    `visitor`'s rules. The converter's own exceptions (AssertionError, ValueError, …) pass."""
    conv = _converter_class()(visitor)
    conv.visit(conv.resolve_refs(schema, "stdin"), "")
    return str(conv.format_grammar())


# -- perf counters and quantisation -----------------------------------------------------------
def perf_context(llm: Any) -> Any:
    """The llama_context handle behind a loaded `Llama`, for its perf counters; None if absent."""
    return getattr(getattr(llm, "_ctx", None), "ctx", None)


def perf_reset(ctx: Any) -> None:
    lib().llama_perf_context_reset(ctx)


def perf_read(ctx: Any) -> Any:
    """llama.cpp's `llama_perf_context_data` (t_p_eval_ms, n_p_eval, t_eval_ms, n_eval)."""
    return lib().llama_perf_context(ctx)


def memory_clear(llm: Any) -> None:
    """Empty the KV cache (every sequence) and forget the tokens `Llama` thinks it holds."""
    llama_cpp = lib()
    llm.reset()
    llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(llm._ctx.ctx), True)


def kv_state_bytes(llm: Any) -> int:
    """Bytes of sequence 0's state as llama.cpp serialises it (`llama_state_seq_get_size`):
    the K and V rows of the cells in use, plus a few bytes of metadata per cell and layer."""
    return int(lib().llama_state_seq_get_size(llm._ctx.ctx, 0))


def context_facts(llm: Any) -> dict[str, Any]:
    """What a loaded context was built with: llama.cpp's own model figures (layers, KV heads,
    sliding window) and the context parameters that set the KV cache and attention kernel."""
    llama_cpp = lib()
    model, params = llm._model.model, llm.context_params
    return {"n_layer": int(llama_cpp.llama_model_n_layer(model)),
            "n_head_kv": int(llama_cpp.llama_model_n_head_kv(model)),
            "n_swa": int(llama_cpp.llama_model_n_swa(model)),
            "n_ctx": int(llama_cpp.llama_n_ctx(llm._ctx.ctx)), "n_batch": int(params.n_batch),
            "n_ubatch": int(params.n_ubatch), "flash_attn_type": int(params.flash_attn_type),
            "swa_full": bool(params.swa_full), "type_k": int(params.type_k), "type_v": int(params.type_v)}


def context_defaults() -> dict[str, Any]:
    """llama.cpp's own defaults (`llama_context_default_params`), to say where llama-cpp-python differs."""
    params = lib().llama_context_default_params()
    return {"flash_attn_type": int(params.flash_attn_type), "swa_full": bool(params.swa_full),
            "n_batch": int(params.n_batch), "n_ubatch": int(params.n_ubatch)}


FTYPE_PREFIX = "LLAMA_FTYPE_MOSTLY_"


def ftype_names() -> list[str]:
    """Quantisation types the library names (lower case: q8_0, q4_k_m, …)."""
    return sorted(n.removeprefix(FTYPE_PREFIX).lower() for n in dir(lib()) if n.startswith(FTYPE_PREFIX))


def ftype(name: str) -> int | None:
    value = getattr(lib(), f"{FTYPE_PREFIX}{name.upper()}", None)
    return None if value is None else int(value)


def quantize_file(source: str, target: str, ftype_value: int, threads: int = 0) -> int:
    """llama_model_quantize(source → target); its return code (0: success). The source may
    itself be quantised (allow_requantize)."""
    import ctypes

    llama_cpp = lib()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype_value
    params.allow_requantize = True
    params.nthread = threads
    return int(llama_cpp.llama_model_quantize(source.encode(), target.encode(), ctypes.byref(params)))
