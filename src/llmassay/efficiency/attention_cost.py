"""What attention costs as the context grows: prefill time per token and KV-cache memory of a
llama.cpp model at context lengths n up to its window (`llmassay attention-cost`).

Each prefill decodes n random tokens (ids away from the vocabulary's ends, as llama-bench
draws them) into an emptied KV cache in chunks of n_batch, logits for the last position only,
timed by the wall clock and by the process's CPU time (with one thread the CPU time is the
compute, and other processes' load hardly moves it). Lengths and models are interleaved and
the order alternates every repeat (ascending then descending lengths, models forwards then
backwards), so a slow spell on a shared machine falls on every configuration, not one.

KV memory per n comes two ways and the record keeps both: measured, the size of sequence 0's
state as llama.cpp serialises it after the prefill (`llama_state_seq_get_size`: the K and V
rows of the cells in use), and from the GGUF header, cells × layers × KV heads × head size ×
2 bytes (f16 K and V, llama.cpp's default cache type). Sliding-window layers keep only their
last `n_swa` cells in use; whether llama.cpp *allocates* them for the whole context depends
on `swa_full` (llama.cpp's default: true, a full-size SWA cache, whose attention then also
spans every cell up to the newest and is masked, so its cost grows like full attention's).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from llmassay.efficiency.attention_fit import CostFit, fit_cost
from llmassay.types import LlmassayError

# Layers that are global (full attention) when a model has a sliding window, as llama.cpp
# sets them (src/llama-model.cpp, `hparams.set_swa_pattern(k)`: layer il is local unless
# il % k == k − 1). Gemma 3: five local layers, then one global.
SWA_PATTERN = {"gemma2": 2, "gemma3": 6}
KV_BYTES = 2  # f16, llama.cpp's default type_k / type_v
CELL_PAD = 256  # llama.cpp pads the KV cache's cells to a multiple of this


@dataclass(frozen=True)
class KvLayout:
    """The KV cache's shape from the GGUF header (as llama.cpp reads it)."""

    architecture: str
    n_layer: int
    n_head_kv: int
    head_dim_k: int
    head_dim_v: int
    window: int  # the training context length: the longest n allowed
    n_swa: int = 0  # sliding window of the local layers; 0: every layer attends to the whole context
    swa_every: int | None = None  # one global layer every k; None with n_swa > 0: llama.cpp's pattern unknown here

    @property
    def global_layers(self) -> int | None:
        if not self.n_swa:
            return self.n_layer
        if not self.swa_every:
            return None
        return sum(1 for il in range(self.n_layer) if il % self.swa_every == self.swa_every - 1)

    @property
    def row_bytes(self) -> int:
        """K and V bytes of one cell in one layer."""
        return self.n_head_kv * (self.head_dim_k + self.head_dim_v) * KV_BYTES

    def in_use_bytes(self, n: int) -> int | None:
        """KV bytes holding n tokens after a prefill: n cells in global layers, the last n_swa in local ones."""
        glob = self.global_layers
        if glob is None:
            return None
        local = self.n_layer - glob
        return self.row_bytes * (glob * n + local * min(n, self.n_swa))

    def allocated_bytes(self, n_ctx: int, swa_full: bool, n_ubatch: int) -> int | None:
        """KV bytes llama.cpp allocates for a context of n_ctx cells (llama-kv-cache-iswa.cpp:
        the local layers get min(n_ctx, pad(n_swa + n_ubatch)) cells unless swa_full)."""
        glob = self.global_layers
        if glob is None:
            return None
        cells = _pad(n_ctx)
        local_cells = cells if swa_full or not self.n_swa else min(cells, _pad(self.n_swa + n_ubatch))
        return self.row_bytes * (glob * cells + (self.n_layer - glob) * local_cells)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "global_layers": self.global_layers}


def _pad(n: int) -> int:
    return -(-n // CELL_PAD) * CELL_PAD


def kv_layout(metadata: dict[str, str], label: str) -> KvLayout:
    """The KV layout from a GGUF's metadata (string values, as llama-cpp-python gives them)."""
    arch = metadata.get("general.architecture", "")

    def number(key: str, default: int | None = None) -> int:
        value = metadata.get(f"{arch}.{key}")
        if value is None:
            if default is None:
                raise LlmassayError(f"attention-cost: {label}: the GGUF header has no {arch}.{key}")
            return default
        try:
            return int(float(value))
        except ValueError:
            raise LlmassayError(f"attention-cost: {label}: {arch}.{key} is {value!r}, not one number "
                                "(per-layer KV heads are not supported)") from None

    heads = number("attention.head_count")
    head_dim = number("embedding_length") // heads
    n_swa = number("attention.sliding_window", 0)
    return KvLayout(arch, number("block_count"), number("attention.head_count_kv", heads),
                    number("attention.key_length", head_dim), number("attention.value_length", head_dim),
                    number("context_length"), n_swa, SWA_PATTERN.get(arch) if n_swa else None)


def parse_lengths(text: str) -> tuple[int, ...]:
    """'256,512,1k,8k' → (256, 512, 1024, 8192): whole token counts ≥ 1 (k = 1024), sorted, unique."""
    out = set()
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        digits, scale = (item[:-1], 1024) if item[-1] in "kK" else (item, 1)
        if not digits.isdigit() or int(digits) < 1:
            raise LlmassayError(f"attention-cost: --lengths: {item!r} is not a whole number of tokens ≥ 1 "
                                "(e.g. 256,512,1k,8k)")
        out.add(int(digits) * scale)
    if len(out) < 3:
        raise LlmassayError(f"attention-cost: --lengths: a + b·n + c·n² needs at least 3 distinct lengths, "
                            f"not {len(out)} ({text!r})")
    return tuple(sorted(out))


def check_lengths(lengths: Sequence[int], layout: KvLayout, label: str) -> None:
    """A length above the model's window is a one-line error naming both."""
    over = [n for n in lengths if n > layout.window]
    if over:
        raise LlmassayError(f"attention-cost: context length {over[0]} is above {label}'s window of {layout.window} "
                            f"tokens (GGUF {layout.architecture}.context_length)")


@dataclass
class Target:
    """One configuration to time: a loaded `Llama` and how it was set up."""

    label: str
    llm: Any
    path: str
    layout: KvLayout
    context: dict[str, Any] = field(default_factory=dict)  # llama_internals.context_facts


@dataclass(frozen=True)
class Prefill:
    """One timed prefill."""

    label: str
    n: int
    repeat: int
    wall_s: float
    cpu_s: float
    kv_state_bytes: int


def schedule(labels: Sequence[str], lengths: Sequence[int], repeats: int) -> list[tuple[int, int, str]]:
    """(repeat, n, label) in run order: lengths ascending on even repeats and descending on odd
    ones, configurations forwards then backwards, every configuration at a length back to back."""
    out: list[tuple[int, int, str]] = []
    for r in range(repeats):
        ns = list(lengths) if r % 2 == 0 else list(reversed(lengths))
        names = list(labels) if r % 2 == 0 else list(reversed(labels))
        out.extend((r, n, label) for n in ns for label in names)
    return out


def prefill_tokens(n: int, n_vocab: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed + n)
    return rng.integers(100, max(101, n_vocab - 100), n).tolist()


def time_prefill(target: Target, tokens: Sequence[int]) -> tuple[float, float, int]:
    """Wall and CPU seconds of one prefill of `tokens` into an empty cache; KV state bytes after it."""
    from llmassay.backends import llama_internals

    llm, n = target.llm, len(tokens)
    llama_internals.memory_clear(llm)
    step = int(target.context.get("n_batch") or llm.n_batch)
    cpu0, t0 = time.process_time(), time.perf_counter()
    for start in range(0, n, step):
        llama_internals.decode_chunk(llm, list(tokens[start:start + step]), start, n - 1)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return wall, cpu, llama_internals.kv_state_bytes(llm)


def measure(targets: Sequence[Target], lengths: Sequence[int], repeats: int, seed: int = 0,
            progress: Callable[[Prefill], None] | None = None) -> list[Prefill]:
    """Every (configuration, length) timed `repeats` times in `schedule` order, after one
    untimed warm-up prefill of the shortest length per configuration."""
    by_label = {t.label: t for t in targets}
    for t in targets:
        time_prefill(t, prefill_tokens(min(lengths), t.llm.n_vocab(), seed))
    out = []
    for r, n, label in schedule([t.label for t in targets], lengths, repeats):
        target = by_label[label]
        wall, cpu, state = time_prefill(target, prefill_tokens(n, target.llm.n_vocab(), seed))
        out.append(Prefill(label, n, r, wall, cpu, state))
        if progress:
            progress(out[-1])
    return out


@dataclass(frozen=True)
class ConfigResult:
    """One configuration's fits (wall and CPU time) and KV memory per length."""

    label: str
    path: str
    layout: KvLayout
    context: dict[str, Any]
    wall: CostFit
    cpu: CostFit
    kv: tuple[dict[str, Any], ...]  # per n: measured state bytes, header in-use bytes, allocated bytes
    prefills: tuple[Prefill, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "path": self.path, "layout": self.layout.as_dict(), "context": self.context,
                "fit_wall": self.wall.as_dict(), "fit_cpu": self.cpu.as_dict(), "kv": list(self.kv),
                "prefills": [asdict(p) for p in self.prefills]}


def analyse(target: Target, prefills: Sequence[Prefill], seed: int = 0) -> ConfigResult:
    mine = [p for p in prefills if p.label == target.label]
    ns = [p.n for p in mine]
    wall = fit_cost(ns, [p.wall_s for p in mine], seed=seed)
    cpu = fit_cost(ns, [p.cpu_s for p in mine], seed=seed)
    ctx = target.context
    kv = []
    for n in sorted(set(ns)):
        state = max(p.kv_state_bytes for p in mine if p.n == n)
        header = target.layout.in_use_bytes(n)
        kv.append({"n": n, "state_bytes": state, "header_in_use_bytes": header,
                   "state_over_header": state / header if header else None,
                   "allocated_bytes": target.layout.allocated_bytes(n, bool(ctx.get("swa_full", True)),
                                                                    int(ctx.get("n_ubatch", 512))),
                   "allocated_swa_full_false_bytes": target.layout.allocated_bytes(n, False, int(ctx.get("n_ubatch", 512)))
                   if target.layout.n_swa else None})
    return ConfigResult(target.label, target.path, target.layout, ctx, wall, cpu, tuple(kv), tuple(mine))


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def write_record(path: Path, plan: dict[str, Any], results: Sequence[ConfigResult], extra: dict[str, Any]) -> None:
    import json

    path.write_text(json.dumps({"plan": plan, **extra, "configs": [r.as_dict() for r in results]}, indent=1),
                    encoding="utf-8")


def markdown(results: Sequence[ConfigResult], plan: dict[str, Any]) -> str:
    """The fits, per-token times and KV memory as markdown tables."""
    mb = 1e6
    lines = [f"Plan: {plan['repeats']} repeats; n_threads {plan['threads']}, n_batch {plan['n_batch']} "
             f"(n_ubatch {plan['n_ubatch']}), flash attention {plan['flash_attn']}; 95 % CIs: bootstrap over repeats "
             "within each length.", "",
             "| configuration | clock | a, ms | b, µs/token | c, ns/token² | c's CI excludes 0 | n² share of time at n_ref |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        for clock, f in (("wall", r.wall), ("cpu", r.cpu)):
            lines.append(f"| {r.label} | {clock} | {f.a * 1e3:.1f} [{f.a_ci[0] * 1e3:.1f}, {f.a_ci[1] * 1e3:.1f}] "
                         f"| {f.b * 1e6:.1f} [{f.b_ci[0] * 1e6:.1f}, {f.b_ci[1] * 1e6:.1f}] "
                         f"| {f.c * 1e9:.3f} [{f.c_ci[0] * 1e9:.3f}, {f.c_ci[1] * 1e9:.3f}] "
                         f"| {'yes' if f.c_excludes_zero else 'no'} "
                         f"| {f.quadratic_share:.0%} [{f.quadratic_share_ci[0]:.0%}, {f.quadratic_share_ci[1]:.0%}] "
                         f"(n={f.n_ref}) |")
    lengths = sorted({p.n for r in results for p in r.prefills})
    lines += ["", "Prefill time per token, ms (mean over repeats [95 % CI]; wall / CPU):", "",
              "| configuration | " + " | ".join(f"n={n}" for n in lengths) + " |", "|---|" + "---|" * len(lengths)]
    for r in results:
        cells = {w.n: f"{w.seconds * 1e3:.2f} [{w.ci[0] * 1e3:.2f}, {w.ci[1] * 1e3:.2f}] / {c.seconds * 1e3:.2f}"
                 for w, c in zip(r.wall.per_token, r.cpu.per_token)}
        lines.append(f"| {r.label} | " + " | ".join(cells.get(n, "-") for n in lengths) + " |")
    lines += ["", "KV cache, MB (10⁶ bytes): measured state after the prefill / from the GGUF header (in use) / "
              "allocated for a context of n cells:", "",
              "| configuration | " + " | ".join(f"n={n}" for n in lengths) + " |", "|---|" + "---|" * len(lengths)]
    for r in results:
        cells = {}
        for k in r.kv:
            header = f"{k['header_in_use_bytes'] / mb:.2f}" if k["header_in_use_bytes"] else "?"
            alloc = f"{k['allocated_bytes'] / mb:.1f}" if k["allocated_bytes"] else "?"
            cells[k["n"]] = f"{k['state_bytes'] / mb:.2f} / {header} / {alloc}"
        lines.append(f"| {r.label} | " + " | ".join(cells.get(n, "-") for n in lengths) + " |")
    return "\n".join(lines)


SWA_MODES = ("default", "true", "false", "both")


def open_targets(specs: Sequence[str], lengths: Sequence[int], threads: int, n_batch: int, flash_attn: bool,
                 swa_full: str = "default") -> list[Target]:
    """Load each `llamacpp/…` model (alias or GGUF path) with a context of max(lengths) cells.
    `swa_full`: llama.cpp's default, true, false, or both (a model with sliding-window layers
    is then loaded twice, once each way; a model without them once)."""
    from llmassay.backends import llama_internals
    from llmassay.backends.llama_load import open_llama
    from llmassay.models import resolve_model_path

    if swa_full not in SWA_MODES:
        raise LlmassayError(f"attention-cost: --swa-full must be one of {', '.join(SWA_MODES)}, not {swa_full!r}")
    if len(set(specs)) != len(specs):
        raise LlmassayError("attention-cost: the same --model is given twice")
    models = []  # every model's layout and lengths checked before any context is built
    for spec in specs:
        kind, _, rest = spec.partition("/")
        if kind in ("hf", "openai") or (kind in ("llamacpp",) and not rest):
            raise LlmassayError(f"attention-cost: {spec!r}: only llama.cpp models are timed (llamacpp/ALIAS or a .gguf path)")
        name = spec.removeprefix("llamacpp/")
        path = resolve_model_path(name)
        label = Path(name).stem if name.endswith(".gguf") else name
        probe = open_llama(str(path), n_threads=threads, n_ctx=CELL_PAD, n_batch=CELL_PAD, verbose=False)
        layout = kv_layout(dict(probe.metadata), label)  # the header as llama.cpp read it
        probe.close()
        check_lengths(lengths, layout, label)
        models.append((path, label, layout))
    targets = []
    for path, label, layout in models:
        modes: list[bool | None] = [None] if swa_full == "default" else [swa_full == "true"] if swa_full != "both" \
            else [True, False] if layout.n_swa else [None]
        for mode in modes:
            llm = open_llama(str(path), n_threads=threads, n_ctx=max(lengths), n_batch=n_batch, verbose=False, seed=0,
                             flash_attn=flash_attn, swa_full=mode)
            ctx = llama_internals.context_facts(llm)
            tag = f"{label} (swa_full={'true' if ctx['swa_full'] else 'false'})" if layout.n_swa else label
            targets.append(Target(tag, llm, str(path), layout, ctx))
    return targets
