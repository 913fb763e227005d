"""LoRA SFT (PEFT) on a causal LM loaded as the hf backend loads it, in a plain torch loop.

A plain loop rather than transformers' Trainer or TRL's SFTTrainer: the batch of step s is a
function of (seed, s) alone and dropout is off by default, so a run resumed from its last
checkpoint (adapter, optimizer state, loss log; written every `save_every` steps, renamed into
place so a kill -9 never leaves half a checkpoint) gives the same losses as one that never
stopped — tested — and each step's time, tokens and the process's peak RSS are measured where
they happen, for the run card.

The output folder: adapter/ (PEFT save_pretrained, what `--model-args adapter=DIR` loads),
config.json (the training configuration), loss.json (loss per step), card.json (the cost of
the fix), training_data.jsonl (the texts the leakage guard audited), checkpoint/ (the last one).
"""

from __future__ import annotations

import dataclasses
import json
import random
import resource
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmassay.tune.data import Pair, pairs_hash
from llmassay.tune.guard import GuardResult
from llmassay.types import LlmassayError

CHECKPOINT = "checkpoint"


@dataclass(frozen=True)
class SftConfig:
    steps: int = 40
    lr: float = 5e-4
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.0  # > 0 makes a resumed run differ from an uninterrupted one
    batch_size: int = 4
    max_length: int = 256  # prompt + completion tokens; longer pairs lose prompt tokens from the left
    seed: int = 0
    save_every: int = 10
    prompt_format: str = "chat"  # chat: the tokenizer's chat template when it has one (as the probes ask); raw
    # every linear layer but the output head (QLoRA's choice): on the tiny test model, PEFT's
    # default (q_proj, v_proj only) moved P(answer) 5x less in the same steps
    target_modules: str | tuple[str, ...] = "all-linear"

    def check(self) -> None:
        for name in ("steps", "rank", "batch_size", "max_length", "save_every"):
            if getattr(self, name) < 1:
                raise LlmassayError(f"--{name.replace('_', '-')}: must be a positive integer")
        if self.lr <= 0:
            raise LlmassayError("--lr: must be positive")
        if self.prompt_format not in ("chat", "raw"):
            raise LlmassayError("--prompt-format: chat or raw")


@dataclass
class SftRun:
    output: Path
    losses: list[dict[str, Any]]
    card: dict[str, Any]


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def _encode(pairs: list[Pair], backend: Any, cfg: SftConfig) -> list[tuple[list[int], int]]:
    """(token ids, number of prompt tokens) per pair: the prompt as the backend tokenises a
    generation prompt (through the chat template when asked and present), then the
    completion's tokens and the end-of-sequence token."""
    tok = backend.tokenizer
    chat = cfg.prompt_format == "chat" and getattr(tok, "chat_template", None)
    eos = tok.eos_token_id if tok.eos_token_id is not None else backend._prefix_token()
    out = []
    for p in pairs:
        prompt = (tok.apply_chat_template([{"role": "user", "content": p.prompt}], add_generation_prompt=True,
                                          tokenize=False) if chat else p.prompt)
        ids = backend.tokenize(prompt)
        completion = list(tok.encode(p.completion, add_special_tokens=False)) + [int(eos)]
        ids = (ids + completion)[-cfg.max_length:]
        out.append((ids, max(0, len(ids) - len(completion))))
    return out


def _batch_indices(step: int, n: int, cfg: SftConfig) -> list[int]:
    """The pairs of 1-based `step`: epochs of a seeded permutation, read in order."""
    start = (step - 1) * cfg.batch_size
    out = []
    for pos in range(start, start + cfg.batch_size):
        epoch, k = divmod(pos, n)
        order = list(range(n))
        random.Random(cfg.seed * 1_000_003 + epoch).shuffle(order)
        out.append(order[k])
    return out


def _collate(rows: list[tuple[list[int], int]], pad: int, torch: Any) -> tuple[Any, Any, Any, int]:
    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    for r, (seq, n_prompt) in enumerate(rows):
        ids[r, : len(seq)] = torch.tensor(seq)
        mask[r, : len(seq)] = 1
        labels[r, n_prompt : len(seq)] = torch.tensor(seq[n_prompt:])
    return ids, mask, labels, sum(len(seq) for seq, _ in rows)


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def _save_checkpoint(output: Path, model: Any, optimizer: Any, losses: list[dict[str, Any]], torch: Any) -> None:
    """Written beside, then renamed over the previous one: a kill at any moment leaves a whole checkpoint."""
    tmp = output / f"{CHECKPOINT}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp / "adapter"))
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    _write_json(tmp / "state.json", {"step": losses[-1]["step"], "losses": losses})
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
    differs = sorted(k for k in set(saved) | set(config) if k not in ("steps", "started") and saved.get(k) != config.get(k))
    if differs:
        raise LlmassayError(f"--output-path {output}: holds a checkpoint of another run ({', '.join(differs)} "
                            "differ); give a new folder or the same settings")
    return ckpt


def train_sft(
    backend: Any,
    pairs: list[Pair],
    output: str | Path,
    cfg: SftConfig,
    guard: GuardResult | None = None,
    source: dict[str, Any] | None = None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
) -> SftRun:
    """Train a LoRA adapter on `backend.model` (an `HFBackend`; trained in place) and write the
    output folder. `source` (model, model args, recipe or data file) goes into config.json;
    `on_step` sees each step's log entry after it (and its checkpoint) is written."""
    cfg.check()
    import torch
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
    from peft.utils import load_peft_weights

    started = time.perf_counter()
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    config = {**{k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(cfg).items()},
              **(source or {}), "pairs": len(pairs), "pairs_sha": pairs_hash(pairs), "model_fingerprint":
              backend.fingerprint(), "versions": _versions()}
    resume = _resume_point(output, config)
    _write_json(output / "config.json", config)

    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    lora = LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, task_type="CAUSAL_LM",
                      target_modules=cfg.target_modules if isinstance(cfg.target_modules, str) else list(cfg.target_modules))
    model = get_peft_model(backend.model, lora)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    losses: list[dict[str, Any]] = []
    if resume is not None:
        set_peft_model_state_dict(model, load_peft_weights(str(resume / "adapter")))
        optimizer.load_state_dict(torch.load(resume / "optimizer.pt"))
        losses = json.loads((resume / "state.json").read_text(encoding="utf-8"))["losses"]
    first = len(losses) + 1
    encoded = _encode(pairs, backend, cfg)
    pad = backend.tokenizer.pad_token_id
    pad = int(pad) if pad is not None else backend._prefix_token()
    model.train()
    for step in range(first, cfg.steps + 1):
        t0 = time.perf_counter()
        ids, mask, labels, tokens = _collate([encoded[i] for i in _batch_indices(step, len(encoded), cfg)], pad, torch)
        out = model(input_ids=ids.to(backend.device), attention_mask=mask.to(backend.device),
                    labels=labels.to(backend.device))
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        entry = {"step": step, "loss": float(out.loss.detach()), "seconds": round(time.perf_counter() - t0, 4), "tokens": tokens}
        losses.append(entry)
        _write_json(output / "loss.json", losses)
        if step % cfg.save_every == 0 or step == cfg.steps:
            _save_checkpoint(output, model, optimizer, losses, torch)
        if on_step is not None:
            on_step(entry)
    model.eval()
    model.save_pretrained(str(output / "adapter"))
    _write_json(output / "loss.json", losses)
    card = _card(model, losses, first, output, started, guard, cfg)
    _write_json(output / "card.json", card)
    return SftRun(output, losses, card)


def _card(model: Any, losses: list[dict[str, Any]], first: int, output: Path, started: float,
          guard: GuardResult | None, cfg: SftConfig) -> dict[str, Any]:
    trainable, total = model.get_nb_trainable_parameters()
    mine = [e for e in losses if e["step"] >= first]  # the steps this process ran and timed
    seconds = sum(e["seconds"] for e in mine)
    return {
        "method": "lora",
        "trainable_parameters": int(trainable),
        "total_parameters": int(total),
        "trainable_share": round(trainable / total, 6) if total else None,
        "steps": len(losses),
        "resumed_at_step": first if first > 1 else None,
        "loss_first": losses[0]["loss"] if losses else None,
        "loss_last": losses[-1]["loss"] if losses else None,
        "seconds_per_step": round(statistics.median(e["seconds"] for e in mine), 4) if mine else None,
        "tokens_per_second": round(sum(e["tokens"] for e in mine) / seconds, 1) if seconds else None,
        "training_seconds_all_runs": round(sum(e["seconds"] for e in losses), 2),
        "peak_rss_mib": _peak_rss_mib(),
        "adapter_bytes": _dir_bytes(output / "adapter"),
        "wall_seconds": round(time.perf_counter() - started, 2),
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
