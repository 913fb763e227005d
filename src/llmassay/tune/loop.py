"""The training layer `tune sft` and `tune dpo` share: a plain torch loop over a LoRA adapter
(PEFT) — or, with `tuning="full"`, over every parameter of the model — on a causal LM loaded as
the hf backend loads it, its checkpoints, and its run card.

A plain loop rather than transformers' Trainer (or TRL's trainers): the batch of step s is a
function of (seed, s) alone and dropout is off by default, so a run resumed from its last
checkpoint (adapter or weights, optimizer state, loss log; written every `save_every` steps, renamed into
place so a kill -9 never leaves half a checkpoint) gives the same losses as one that never
stopped — tested for both methods — and each step's time, tokens and the process's peak RSS
are measured where they happen, for the run card. A method only supplies how a batch of
its encoded examples becomes a loss (`StepLoss`), given the model and a way to reach the
untuned reference (LoRA: the adapter disabled, no second copy; full: a frozen copy, made only
when the method asks for one).

The card holds the same cost fields for both ways of tuning, so LoRA and full fine-tuning of
one model compare field by field (`tune.cost`): trainable parameters, the bytes of weights,
gradients, optimizer state and reference copy (computed from the tensors), the process's RSS
after loading and its peak (measured), seconds per step, tokens/s, bytes on disk.

The output folder: adapter/ (LoRA: PEFT save_pretrained, what `--model-args adapter=DIR`
loads) or model/ (full: the whole fine-tuned model and its tokenizer, what `hf/DIR/model`
loads), config.json (the training configuration), loss.json (loss per step, plus the method's own
per-step figures), loss.svg (the loss curve, when matplotlib is installed), card.json (the
cost of the fix), report.html (all of it on one page: `report.tune`), training_data.jsonl (the
texts the leakage guard audited), checkpoint/.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import random
import resource
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from llmassay.tune.data import Pair, PreferencePair, pairs_hash
from llmassay.tune.guard import GuardResult
from llmassay.types import LlmassayError

CHECKPOINT = "checkpoint"
TUNINGS = ("lora", "full")


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 40
    lr: float = 5e-4
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.0  # > 0 makes a resumed run differ from an uninterrupted one
    batch_size: int = 4
    max_length: int = 256  # prompt + completion tokens; longer examples lose prompt tokens from the left
    seed: int = 0
    save_every: int = 10
    prompt_format: str = "chat"  # chat: the tokenizer's chat template when it has one (as the probes ask); raw
    # every linear layer but the output head (QLoRA's choice): on the tiny test model, PEFT's
    # default (q_proj, v_proj only) moved P(answer) 5x less in the same steps
    target_modules: str | tuple[str, ...] = "all-linear"
    # lora: a PEFT adapter (rank, alpha, target_modules apply); full: every parameter trainable,
    # same optimizer, data, batches and seed — the cost comparison's other arm
    tuning: str = "lora"

    def check(self) -> None:
        for name in ("steps", "rank", "batch_size", "max_length", "save_every"):
            if getattr(self, name) < 1:
                raise LlmassayError(f"--{name.replace('_', '-')}: must be a positive integer")
        if self.lr <= 0:
            raise LlmassayError("--lr: must be positive")
        if self.prompt_format not in ("chat", "raw"):
            raise LlmassayError("--prompt-format: chat or raw")
        if self.tuning not in TUNINGS:
            raise LlmassayError(f"--method: {' or '.join(TUNINGS)} (got '{self.tuning}')")


@dataclass
class TrainRun:
    output: Path
    losses: list[dict[str, Any]]
    card: dict[str, Any]


Reference = Callable[[], contextlib.AbstractContextManager[Any]]


class StepLoss(Protocol):
    """One step of a method: the model being trained, its encoded examples of the batch, and
    `reference()` — a context giving the untuned model (call it under no_grad) — → (loss
    tensor, the method's per-step figures for loss.json, tokens processed)."""

    def __call__(self, model: Any, rows: list[Any], reference: Reference) -> tuple[Any, dict[str, float], int]: ...


def peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def rss_mib() -> float | None:
    """The process's resident set now (Linux /proc; None elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return round(pages * resource.getpagesize() / 2**20, 1)


def prompt_ids(backend: Any, prompt: str, cfg: TrainConfig) -> list[int]:
    """The prompt as the backend tokenises a generation prompt: through the chat template when
    asked and present (as the probes ask an instruction-tuned model), else raw."""
    tok = backend.tokenizer
    if cfg.prompt_format == "chat" and getattr(tok, "chat_template", None):
        prompt = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                         tokenize=False)
    return backend.tokenize(prompt)


def with_completion(backend: Any, prompt: list[int], completion: str, cfg: TrainConfig) -> tuple[list[int], int]:
    """(token ids, number of prompt tokens): the prompt's ids, the completion's tokens and the
    end-of-sequence token, cut to `max_length` from the left (the prompt loses tokens first)."""
    tok = backend.tokenizer
    eos = tok.eos_token_id if tok.eos_token_id is not None else backend._prefix_token()
    tail = list(tok.encode(completion, add_special_tokens=False)) + [int(eos)]
    ids = (prompt + tail)[-cfg.max_length:]
    return ids, max(0, len(ids) - len(tail))


def pad_id(backend: Any) -> int:
    pad = backend.tokenizer.pad_token_id
    return int(pad) if pad is not None else backend._prefix_token()


def collate(rows: Sequence[tuple[list[int], int]], pad: int, torch: Any) -> tuple[Any, Any, Any, int]:
    """Right-padded ids, attention mask, labels (-100 on the prompt and padding), token count."""
    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    for r, (seq, n_prompt) in enumerate(rows):
        ids[r, : len(seq)] = torch.tensor(seq)
        mask[r, : len(seq)] = 1
        labels[r, n_prompt : len(seq)] = torch.tensor(seq[n_prompt:])
    return ids, mask, labels, sum(len(seq) for seq, _ in rows)


def batch_indices(step: int, n: int, cfg: TrainConfig) -> list[int]:
    """The examples of 1-based `step`: epochs of a seeded permutation, read in order."""
    start = (step - 1) * cfg.batch_size
    out = []
    for pos in range(start, start + cfg.batch_size):
        epoch, k = divmod(pos, n)
        order = list(range(n))
        random.Random(cfg.seed * 1_000_003 + epoch).shuffle(order)
        out.append(order[k])
    return out


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def _save_checkpoint(output: Path, model: Any, optimizer: Any, losses: list[dict[str, Any]], torch: Any,
                     tuning: str) -> None:
    """Written beside, then renamed over the previous one: a kill at any moment leaves a whole checkpoint."""
    tmp = output / f"{CHECKPOINT}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    if tuning == "full":  # every weight; torch.save keeps tied tensors tied
        tmp.mkdir(parents=True)
        torch.save(model.state_dict(), tmp / "model.pt")
    else:
        model.save_pretrained(str(tmp / "adapter"))
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    write_json(tmp / "state.json", {"step": losses[-1]["step"], "losses": losses})
    old = output / f"{CHECKPOINT}.old"
    shutil.rmtree(old, ignore_errors=True)
    if (output / CHECKPOINT).exists():
        (output / CHECKPOINT).replace(old)
    tmp.replace(output / CHECKPOINT)
    shutil.rmtree(old, ignore_errors=True)


def _resume_point(output: Path, config: dict[str, Any]) -> Path | None:
    """The last checkpoint when it belongs to this run (same configuration except `steps`)."""
    ckpt = output / CHECKPOINT
    if not (ckpt / "state.json").exists():
        old = output / f"{CHECKPOINT}.old"  # killed between the two renames
        ckpt = old if (old / "state.json").exists() else ckpt
    if not (ckpt / "state.json").exists():
        return None
    saved = json.loads((output / "config.json").read_text(encoding="utf-8")) if (output / "config.json").exists() else {}
    saved.setdefault("tuning", "lora")  # written before full fine-tuning existed
    differs = sorted(k for k in set(saved) | set(config) if k not in ("steps", "started") and saved.get(k) != config.get(k))
    if differs:
        raise LlmassayError(f"--output-path {output}: holds a checkpoint of another run ({', '.join(differs)} "
                            "differ); give a new folder or the same settings")
    return ckpt


def _trainable(backend: Any, cfg: TrainConfig, torch: Any) -> Any:
    """The model to train: wrapped in a fresh LoRA adapter, or itself with every parameter trainable."""
    if cfg.tuning == "full":
        backend.model.requires_grad_(True)
        return backend.model
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, task_type="CAUSAL_LM",
                      target_modules=cfg.target_modules if isinstance(cfg.target_modules, str) else list(cfg.target_modules))
    return get_peft_model(backend.model, lora)


def _reference(model: Any, cfg: TrainConfig, frozen: Any | None) -> Reference:
    """LoRA: the same model with its adapter disabled; full: the frozen copy taken before training."""
    @contextlib.contextmanager
    def reference() -> Iterator[Any]:
        if cfg.tuning == "lora":
            with model.disable_adapter():
                yield model
        elif frozen is None:
            raise LlmassayError("this method did not ask for a reference model (reference=True)")
        else:
            yield frozen

    return reference


def train_model(
    method: str,
    backend: Any,
    examples: list[Pair] | list[PreferencePair],
    encoded: list[Any],
    step_loss: Callable[[Any, list[Any], Reference], tuple[Any, dict[str, float], int]],
    output: str | Path,
    cfg: TrainConfig,
    guard: GuardResult | None = None,
    source: dict[str, Any] | None = None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
    reference: bool = False,
) -> TrainRun:
    """Train `backend.model` (an `HFBackend`; trained in place: wrapped in a LoRA adapter, or
    every parameter with `cfg.tuning == "full"`) with `step_loss` over `encoded` (one entry per
    example), and write the output folder. `reference`: the method compares with the untuned
    model (DPO) — free for LoRA, a frozen copy of the weights for full. `source` (model, model
    args, recipe or data file) goes into config.json; `on_step` sees each step's log entry after
    it (and its checkpoint) is written."""
    cfg.check()
    import torch

    started = time.perf_counter()
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    config = {"method": method,
              **{k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(cfg).items()},
              **(source or {}), "pairs": len(examples), "pairs_sha": pairs_hash(examples), "model_fingerprint":
              backend.fingerprint(), "versions": _versions()}
    resume = _resume_point(output, config)
    write_json(output / "config.json", config)

    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    rss_loaded = rss_mib()
    rss_seen = [rss_loaded]  # the kernel's high-water mark can miss memory returned by madvise: sampled too
    model = _trainable(backend, cfg, torch)
    frozen = None
    if reference and cfg.tuning == "full":  # before any resumed weights load: the reference is the untuned model
        frozen = copy.deepcopy(model).eval().requires_grad_(False)
    ref = _reference(model, cfg, frozen)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    losses: list[dict[str, Any]] = []
    if resume is not None:
        if cfg.tuning == "full":
            model.load_state_dict(torch.load(resume / "model.pt"))
        else:
            from peft import set_peft_model_state_dict
            from peft.utils import load_peft_weights

            set_peft_model_state_dict(model, load_peft_weights(str(resume / "adapter")))
        optimizer.load_state_dict(torch.load(resume / "optimizer.pt"))
        losses = json.loads((resume / "state.json").read_text(encoding="utf-8"))["losses"]
    first = len(losses) + 1
    model.train()
    for step in range(first, cfg.steps + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        loss, figures, tokens = step_loss(model, [encoded[i] for i in batch_indices(step, len(encoded), cfg)], ref)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        entry = {"step": step, "loss": float(loss.detach()), **figures, "seconds": round(time.perf_counter() - t0, 4),
                 "cpu_seconds": round(time.process_time() - c0, 4),  # less sensitive than wall time to a loaded machine
                 "tokens": tokens}
        losses.append(entry)
        rss_seen.append(rss_mib())
        write_json(output / "loss.json", losses)
        if step % cfg.save_every == 0 or step == cfg.steps:
            _save_checkpoint(output, model, optimizer, losses, torch, cfg.tuning)
        if on_step is not None:
            on_step(entry)
    model.eval()
    memory = _memory(model, optimizer, frozen, rss_loaded, rss_seen)
    weights = output / ("model" if cfg.tuning == "full" else "adapter")
    model.save_pretrained(str(weights))
    if cfg.tuning == "full":  # a folder `hf/DIR/model` loads as it is
        backend.tokenizer.save_pretrained(str(weights))
    write_json(output / "loss.json", losses)
    plot = write_loss_plot(losses, output / "loss.svg", f"{method} loss, {config.get('recipe') or 'data'}")
    card = _card(method, model, losses, first, output, started, guard, cfg, plot, memory)
    write_json(output / "card.json", card)
    from llmassay.report.html import write_report

    write_report(output)  # report.html: the card, the config, the loss curve, how to evaluate (`llmassay report DIR` rebuilds it)
    return TrainRun(output, losses, card)


def write_loss_plot(losses: list[dict[str, Any]], path: Path, title: str) -> str | None:
    """loss.svg: the loss per step and, for DPO, the reward margin and accuracy; None (and no
    file) when matplotlib, the `report` extra, is not installed."""
    from llmassay.report.tune import loss_curve_svg

    try:
        svg = loss_curve_svg(losses, title)
    except LlmassayError:  # matplotlib missing
        return None
    path.write_text(svg + "\n", encoding="utf-8")
    return path.name


def _tensor_bytes(tensors: Iterator[Any]) -> int:
    seen: set[int] = set()
    total = 0
    for t in tensors:
        if t.data_ptr() not in seen:  # tied weights count once
            seen.add(t.data_ptr())
            total += t.numel() * t.element_size()
    return total


def _memory(model: Any, optimizer: Any, frozen: Any | None, rss_loaded: float | None,
            rss_seen: list[float | None]) -> dict[str, Any]:
    """What training holds, computed from the tensors (weights, one gradient per trainable
    weight, AdamW's two moments per trainable weight, the reference copy) beside the process's
    measured RSS after loading and at its peak (load included: a whole-process figure). The
    state is what scales with the parameters; activations scale with batch × length alike for
    LoRA and full, and at a small model's size they can dominate the peak."""
    params = list(model.parameters())
    state = [t for s in optimizer.state.values() for t in s.values() if hasattr(t, "data_ptr")]
    held = {
        "weights_bytes": _tensor_bytes(iter(params)),
        "gradient_bytes": _tensor_bytes(iter(p for p in params if p.requires_grad)),
        "optimizer_state_bytes": _tensor_bytes(iter(state)),
        "reference_bytes": _tensor_bytes(iter(frozen.parameters())) if frozen is not None else 0,
    }
    return {
        **held,
        # what grows with the parameters; activations grow with batch x length and are the same for both
        "training_state_bytes": sum(held.values()),
        "rss_after_load_mib": rss_loaded,
        "peak_rss_mib": max([peak_rss_mib()] + [r for r in rss_seen if r is not None]),
    }


def _parameter_counts(model: Any) -> tuple[int, int]:
    """(trainable, total) parameters, tied weights counted once (as PEFT counts them)."""
    if hasattr(model, "get_nb_trainable_parameters"):
        trainable, total = model.get_nb_trainable_parameters()
        return int(trainable), int(total)
    params = {p.data_ptr(): p for p in model.parameters()}.values()
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def _card(method: str, model: Any, losses: list[dict[str, Any]], first: int, output: Path, started: float,
          guard: GuardResult | None, cfg: TrainConfig, plot: str | None, memory: dict[str, Any]) -> dict[str, Any]:
    trainable, total = _parameter_counts(model)
    mine = [e for e in losses if e["step"] >= first]  # the steps this process ran and timed
    seconds = sum(e["seconds"] for e in mine)
    weights = "model" if cfg.tuning == "full" else "adapter"
    card = {
        "method": cfg.tuning,
        "objective": method,
        "trainable_parameters": int(trainable),
        "total_parameters": int(total),
        "trainable_share": round(trainable / total, 6) if total else None,
        "steps": len(losses),
        "resumed_at_step": first if first > 1 else None,
        "loss_first": losses[0]["loss"] if losses else None,
        "loss_last": losses[-1]["loss"] if losses else None,
    }
    tail = losses[-max(1, len(losses) // 4):]  # the last quarter of the run: one step's figure is noisy
    for name in ("reward_margin", "reward_accuracy"):
        if losses and name in losses[-1]:
            card[f"{name}_last_quarter"] = round(statistics.fmean(e[name] for e in tail), 4)
    return {
        **card,
        "seconds_per_step": round(statistics.median(e["seconds"] for e in mine), 4) if mine else None,
        "tokens_per_second": round(sum(e["tokens"] for e in mine) / seconds, 1) if seconds else None,
        "cpu_seconds_per_step": (round(statistics.median(e["cpu_seconds"] for e in mine), 4)
                                 if mine and all("cpu_seconds" in e for e in mine) else None),
        "training_seconds_all_runs": round(sum(e["seconds"] for e in losses), 2),
        **memory,
        "output": weights,  # what this run writes: adapter/ (LoRA) or model/ (full)
        "output_bytes": _dir_bytes(output / weights),
        "adapter_bytes": _dir_bytes(output / "adapter") if weights == "adapter" else None,
        "checkpoint_bytes": _dir_bytes(output / CHECKPOINT) if (output / CHECKPOINT).exists() else None,
        "wall_seconds": round(time.perf_counter() - started, 2),
        "loss_plot": plot,
        "leakage_guard": guard.as_dict() if guard is not None else None,
        "allow_overlap": bool(guard.allowed) if guard is not None else False,
        "seed": cfg.seed,
    }


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "transformers", "peft"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out
