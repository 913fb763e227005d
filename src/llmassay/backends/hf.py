"""Hugging Face transformers on the CPU: `hf/<local dir>` (optionally `gguf_file=`).

Scoring follows lm-eval's HFLM: context and continuation are encoded as a pair, the
sequence is fed without its last token, right-padded in batches, and the continuation's
log-softmax values are read from float32 logits. Nothing is fetched from a hub.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llmassay.backends._scoring import encode_pair, score_continuation
from llmassay.hashing import file_sha256
from llmassay.types import (
    GenerateRequest,
    Generation,
    LlmassayError,
    LoglikelihoodRequest,
    LoglikelihoodResult,
)


class HFBackend:
    """Model args: gguf_file, dtype (float32), batch_size (8), max_length, add_bos_token."""

    def __init__(
        self,
        model: str,
        gguf_file: str | None = None,
        dtype: str = "float32",
        batch_size: int = 8,
        max_length: int | None = None,
        add_bos_token: bool | None = None,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise LlmassayError(f"hf: unknown model args: {', '.join(sorted(unknown))}")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never download at run time
        import torch
        import transformers

        path = Path(model).expanduser()
        if not path.is_dir():
            raise LlmassayError(f"hf: '{model}' is not a local directory (nothing is downloaded)")
        if gguf_file is not None and not (path / gguf_file).exists():
            raise LlmassayError(f"hf: gguf_file '{gguf_file}' not found in {path}")
        self._torch = torch
        self.name = f"hf/{model}"
        self.path = path
        self.gguf_file = gguf_file
        self.batch_size = int(batch_size)
        torch_dtype = getattr(torch, dtype)
        load_kwargs: dict[str, Any] = {"gguf_file": gguf_file} if gguf_file else {}
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), **load_kwargs)
        self.model = transformers.AutoModelForCausalLM.from_pretrained(
            str(path), torch_dtype=torch_dtype, **load_kwargs
        )
        self.model.eval()
        config = self.model.config
        self.max_length = int(max_length or min(getattr(config, "max_position_embeddings", 2048), 2048))
        model_type = str(getattr(config, "model_type", ""))
        # lm-eval adds a BOS only for Gemma-family models unless told otherwise.
        self.add_bos = add_bos_token if add_bos_token is not None else model_type.startswith("gemma")
        self._params = {"dtype": dtype, "max_length": self.max_length, "add_bos": self.add_bos}
        self._versions = {"transformers": transformers.__version__, "torch": torch.__version__}
        self._fingerprint: dict[str, Any] | None = None
        self.tokens_evaluated = 0

    def tokenize(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=self.add_bos))

    def fingerprint(self) -> dict[str, Any]:
        if self._fingerprint is None:
            if self.gguf_file:
                weights = {self.gguf_file: file_sha256(self.path / self.gguf_file)}
            else:
                weights = {
                    p.name: file_sha256(p)
                    for p in sorted(self.path.iterdir())
                    if p.suffix in (".safetensors", ".bin")
                }
            self._fingerprint = {"backend": "hf", **self._versions, "weights_sha256": weights, **self._params}
        return self._fingerprint

    def _prefix_token(self) -> int:
        tok = self.tokenizer
        for candidate in (tok.bos_token_id, tok.eos_token_id):
            if candidate is not None:
                return int(candidate)
        raise LlmassayError("hf: tokenizer has neither BOS nor EOS for an empty context")

    def loglikelihood(self, reqs: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        torch = self._torch
        pairs = [encode_pair(r, self.tokenize, self._prefix_token(), self.max_length + 1) for r in reqs]
        order = sorted(range(len(pairs)), key=lambda i: -(len(pairs[i].context) + len(pairs[i].continuation)))
        results: list[LoglikelihoodResult | None] = [None] * len(pairs)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            inputs = [list(pairs[i].context + pairs[i].continuation)[:-1] for i in chunk]
            width = max(len(x) for x in inputs)
            ids = torch.full((len(inputs), width), pad, dtype=torch.long)
            mask = torch.zeros((len(inputs), width), dtype=torch.long)
            for row, seq in enumerate(inputs):
                ids[row, : len(seq)] = torch.tensor(seq)
                mask[row, : len(seq)] = 1
            with torch.inference_mode():
                logits = self.model(input_ids=ids, attention_mask=mask).logits.float()
            self.tokens_evaluated += int(mask.sum())
            for row, i in enumerate(chunk):
                pair = pairs[i]
                n_in = len(inputs[row])
                span = logits[row, n_in - len(pair.continuation) : n_in].numpy()
                results[i] = score_continuation(span, pair.continuation, len(pair.context))
        return [r for r in results if r is not None]

    def generate(self, reqs: Sequence[GenerateRequest]) -> list[Generation]:
        return [self._generate_one(r) for r in reqs]

    def _generate_one(self, req: GenerateRequest) -> Generation:
        torch = self._torch
        if req.json_schema is not None or req.grammar is not None:
            raise LlmassayError("hf: constrained decoding (json_schema/grammar) is not supported by this backend yet")
        if req.messages is not None:
            messages = [{"role": r, "content": c} for r, c in req.messages]
            prompt_ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
            if not isinstance(prompt_ids, list):
                prompt_ids = list(prompt_ids["input_ids"])
        else:
            prompt_ids = self.tokenize(req.prompt or "")
        ids = torch.tensor([prompt_ids], dtype=torch.long)
        gen_kwargs: dict[str, Any] = {"max_new_tokens": req.max_tokens, "pad_token_id": self._prefix_token()}
        if req.temperature > 0:
            torch.manual_seed(req.seed + req.repeat)
            gen_kwargs.update(do_sample=True, temperature=req.temperature)
        else:
            gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if req.stop:
            gen_kwargs.update(stop_strings=list(req.stop), tokenizer=self.tokenizer)
        start = time.perf_counter()
        with torch.inference_mode():
            out = self.model.generate(ids, attention_mask=torch.ones_like(ids), **gen_kwargs)
        latency = time.perf_counter() - start
        new_tokens = out[0, ids.shape[1] :].tolist()
        text = self.tokenizer.decode(new_tokens, skip_special_tokens=True)
        finish = "length" if len(new_tokens) >= req.max_tokens else "stop"
        for stop in req.stop:  # transformers keeps the stop string; the Protocol drops it
            cut = text.find(stop)
            if cut >= 0:
                text, finish = text[:cut], "stop"
        self.tokens_evaluated += len(prompt_ids) + len(new_tokens)
        return Generation(
            text=text,
            n_prompt_tokens=len(prompt_ids),
            n_tokens=len(new_tokens),
            finish_reason=finish,
            latency_s=latency,
        )
