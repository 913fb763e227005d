"""Hugging Face transformers: `hf/<local dir>` or `hf/<hub id>` (optionally `gguf_file=`), on
the CPU unless `device` / `device_map` say otherwise (`_hf_load`).

Scoring reproduces lm-eval 0.4.13's HFLM (`--model hf`) step by step, so the same model
gives the same numbers here and there:

* tokens: `tokenizer.encode(text)` with the tokenizer's own special-token default unless
  `add_bos_token` is given, and no BOS added to a text that already starts with one;
  `_encode_pair` moves the context's trailing spaces to the continuation and takes the
  continuation's tokens as the tail of the whole text's tokens; an empty context becomes
  the BOS (else EOS) token;
* max_length from the config (n_positions, max_position_embeddings, n_ctx), then the
  tokenizer's model_max_length, then 2048; too-long inputs lose tokens from the left,
  counted in each result's `n_truncated_tokens` (so do generation prompts);
* requests whose inputs (context + continuation[:-1]) are the same token sequence share
  one forward pass (the choices of a multiple-choice question); inputs are sorted
  longest first, right-padded with zeros and run without an attention mask, in batches
  of at most `batch_size` (cut where they waste least padding);
* float32 log-softmax, gathered at the continuation tokens and summed in float32.

Two departures, for speed, that change the numbers by float rounding only (≤ 1e-4 nats;
the same picks; tests/test_hf_backend.py): the output layer runs only at the positions
whose log-probabilities are needed (`logits_to_keep`), and a token prefix shared by every
input of a batch (a fixed few-shot block) is read once and served from a KV cache that
persists across batches, where lm-eval re-reads it for every request.

Generation: greedy requests that share their settings run in left-padded batches of up to
`batch_size`, as lm-eval's generate_until does, and a prefix all of a batch's prompts share
comes from the same KV cache (same text as one by one, tested); a sampled request runs
alone under its own seed (`_hf_batching`).

A hub id is fetched by transformers into its own cache, under its own offline flag
(HF_HUB_OFFLINE), which is never set here.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import inspect
import json
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llmassay.backends import _hf_load
from llmassay.backends._hf_batching import generation_batches, padding_aware_batches, row_stops
from llmassay.backends._scoring import EncodedPair, encode_pair
from llmassay.backends.token_stats import StatsAccumulator, TokenStats, TokenStatsRequest
from llmassay.hashing import file_sha256
from llmassay.models import llmassay_home
from llmassay.types import (
    GenerateRequest,
    Generation,
    LlmassayError,
    LoglikelihoodRequest,
    LoglikelihoodResult,
)

DEFAULT_MAX_LENGTH = 2048  # lm-eval's fallback when neither config nor tokenizer says
MIN_SHARED_PREFIX = 8  # shorter shared prefixes are not worth a separate pass and a cache copy;
# zero-shot MMLU prompts share a 12-token header: serving it from the cache saved 4–12 %
_TOKENIZER_INFINITY = 1000000000000000019884624838656  # transformers' "no limit" value


class HFBackend:
    """Model args: gguf_file, dtype (float32; auto, float16, bfloat16), device (cpu; cuda,
    cuda:N, mps), device_map (none; auto, balanced, sequential or a device), revision (a hub
    id's branch, tag or commit), batch_size (8), max_length, add_bos_token, dequant_cache
    (true: keep the de-quantised GGUF as safetensors, keyed by its sha256), edits (a folder
    written by `llmassay edit`: its weight delta is added at load, its sha256 fingerprinted),
    adapter (a PEFT adapter folder, merged into the weights at load; its hash joins the fingerprint)."""

    def __init__(
        self,
        model: str,
        gguf_file: str | None = None,
        dtype: str = "float32",
        batch_size: int = 8,
        max_length: int | None = None,
        add_bos_token: bool | None = None,
        dequant_cache: bool = True,
        device: str = "cpu",
        device_map: str | None = None,
        revision: str | None = None,
        edits: str | None = None,
        adapter: str | None = None,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise LlmassayError(f"hf: unknown model args: {', '.join(sorted(unknown))}")
        import torch
        import transformers

        torch_dtype = _hf_load.torch_dtype(dtype, torch)
        device = _hf_load.check_device(device, torch)
        device_map = _hf_load.check_device_map(device_map, torch)
        if device_map is not None and device != "cpu":
            raise LlmassayError("hf: give device or device_map, not both (device_map places the model itself)")
        if int(batch_size) < 1:
            raise LlmassayError("hf: batch_size must be a positive integer")
        path = Path(model).expanduser()
        hub_id = None if path.is_dir() else model
        if hub_id is not None and not _hf_load.is_hub_id(model):
            raise LlmassayError(f"hf: '{model}' is not a local directory (nor a hub id: org/name)")
        if hub_id is None and revision is not None:
            raise LlmassayError(f"hf: revision applies to hub ids; '{model}' is a local directory")
        if hub_id is not None and gguf_file is not None:  # one file: fetch it, then read it as a local folder
            path = _hf_load.hub_snapshot(hub_id, revision, gguf_file)
        if gguf_file is not None and not (path / gguf_file).exists():
            raise LlmassayError(f"hf: gguf_file '{gguf_file}' not found in {path}")
        self._torch = torch
        self.name = f"hf/{model}"
        self.path = path
        self.gguf_file = gguf_file
        self.batch_size = int(batch_size)
        from_hub = hub_id is not None and gguf_file is None  # transformers picks and fetches the files
        source = model if from_hub else str(path)
        load_kwargs: dict[str, Any] = {"gguf_file": gguf_file} if gguf_file else {}
        if from_hub and revision is not None:
            load_kwargs["revision"] = revision
        cached = self._dequantised_dir(path, gguf_file, str(dtype)) if gguf_file and dequant_cache else None
        if cached is not None and (cached / "model.safetensors").exists():
            source, load_kwargs = str(cached), {}  # same weights, without the 20–30 s de-quantisation
        tok_kwargs = dict(load_kwargs)
        if add_bos_token is not None:
            tok_kwargs["add_bos_token"] = add_bos_token
        transformers.utils.logging.disable_progress_bar()
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(source, **tok_kwargs)
            self.model = transformers.AutoModelForCausalLM.from_pretrained(
                source, dtype=torch_dtype, **({"device_map": device_map} if device_map else {}), **load_kwargs)
        except OSError as exc:  # transformers' "couldn't connect", "not a valid model identifier", ...
            if from_hub:
                raise _hf_load.hub_error(model, exc) from None
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise LlmassayError(f"hf: cannot load '{model}' ({reason})") from None
        if from_hub:
            self.path = _hf_load.hub_snapshot(model, revision)
        if cached is not None and load_kwargs:
            self._save_dequantised(cached, transformers, source, load_kwargs)
        if adapter is not None:  # before placement: the merged weights move with the model
            self.model, adapter_sha = _hf_load.with_adapter(self.model, str(adapter))
        if device != "cpu":
            self.model.to(device)  # type: ignore[arg-type]  # transformers 5 types its wrapped .to() wrongly
        self.device = self.model.device  # inputs go where the first layer is
        self.model.eval()
        self.model.tie_weights()
        # Modern causal LMs can run the output layer on chosen positions only.
        forward_params = inspect.signature(self.model.forward).parameters
        self._keeps_logits = "logits_to_keep" in forward_params
        self._cache_arg = "cache" if "cache" in forward_params else "past_key_values"  # renamed in transformers 5
        # Prefix KV reuse needs logits_to_keep (positions after the prefix) and full attention
        # layers (a sliding-window cache drops what later tokens of a long prefix would see).
        self._reuses_prefix = self._keeps_logits and not getattr(self.model.config, "sliding_window", None)
        self._kv_prefix: tuple[tuple[int, ...], Any] | None = None
        # request_order tokenises each request before loglikelihood does: encode once.
        self._encode_pair_cached = functools.lru_cache(maxsize=1 << 16)(self._encode_pair_uncached)
        config = self.model.config
        self.max_length = int(max_length) if max_length else _resolve_max_length(config, self.tokenizer)
        # None: the tokenizer's own default decides (lm-eval's default); True/False force it.
        self.add_bos = add_bos_token
        self._bos_text = self.tokenizer.decode(self._prefix_token())
        self._params: dict[str, Any] = {"dtype": str(dtype), "max_length": self.max_length,
                                        "add_bos_token": self.add_bos}
        # Placement and origin, only where they differ from a local folder on the CPU, so a
        # CPU run's fingerprint (and cache key) is what it always was.
        if device != "cpu" or device_map is not None:
            self._params.update(device=str(self.device), device_map=device_map)
        if adapter is not None:  # a tuned model never shares cache entries with its base
            self._params.update(adapter_sha256=adapter_sha)
        if hub_id is not None:
            self._params.update(hub_id=hub_id, revision=revision, hub_commit=self.path.name)
        if edits is not None:  # only when given: an unedited model's fingerprint is unchanged
            from llmassay.editing.delta import apply_delta

            self._params["edits_sha256"] = apply_delta(self.model, str(edits), self.weights_sha256())
        self._versions = {"transformers": transformers.__version__, "torch": torch.__version__}
        self._fingerprint: dict[str, Any] | None = None
        self.tokens_evaluated = 0

    @staticmethod
    def _dequantised_dir(path: Path, gguf_file: str, dtype: str) -> Path:
        return llmassay_home() / "hf-dequantised" / f"{file_sha256(path / gguf_file)[:24]}-{dtype}"

    def _save_dequantised(self, target: Path, transformers: Any, source: str, load_kwargs: dict[str, Any]) -> None:
        """Write model + tokenizer next to the cache, then rename: readers never see half a copy."""
        from safetensors.torch import save_model

        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        try:
            tmp.mkdir(parents=True, exist_ok=True)
            # transformers refuses save_pretrained() on a GGUF-loaded model, but the tensors are
            # plain fp32 now: write them and a config without the GGUF quantisation marker.
            save_model(self.model, str(tmp / "model.safetensors"))
            config = self.model.config.to_dict()
            config.pop("quantization_config", None)
            (tmp / "config.json").write_text(json.dumps(config, indent=2))
            # the tokenizer is saved as loaded from the GGUF, without add_bos_token overrides
            transformers.AutoTokenizer.from_pretrained(source, **load_kwargs).save_pretrained(str(tmp))
            tmp.replace(target)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)  # a cache that cannot be written costs only time

    # -- Protocol -----------------------------------------------------------------------
    def tokenize(self, text: str) -> list[int]:
        return self._tok_encode(text)

    def weights_sha256(self) -> dict[str, str]:
        """The loaded files' sha256 (the GGUF, else every weights file), as fingerprinted."""
        if self.gguf_file:
            return {self.gguf_file: file_sha256(self.path / self.gguf_file)}
        return {p.name: file_sha256(p) for p in sorted(self.path.iterdir()) if p.suffix in (".safetensors", ".bin")}

    def weights_changed(self) -> None:
        """The weights were edited in place (`llmassay edit`): drop the cached prefix KV."""
        self._kv_prefix = None

    def fingerprint(self) -> dict[str, Any]:
        if self._fingerprint is None:
            self._fingerprint = {"backend": "hf", **self._versions, "weights_sha256": self.weights_sha256(),
                                 **self._params}
        return self._fingerprint

    def model_size(self) -> dict[str, Any]:
        """Parameters (their sum), model_type and dtype or quantisation method (model_size.py)."""
        from llmassay.backends.model_size import torch_size

        return torch_size(self.model).as_dict()

    def loglikelihood(self, reqs: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        pairs = [self._encode_pair(r) for r in reqs]
        for r, (_, cont) in zip(reqs, pairs):
            if len(cont) > self.max_length:
                raise LlmassayError(
                    f"hf: continuation {r.continuation[:40]!r} is {len(cont)} tokens, "
                    f"more than max_length {self.max_length}"
                )
        return self._score_pairs(pairs)

    def rolling_tokens(self, text: str) -> tuple[list[int], int, int]:
        """A document's tokens (special tokens only with add_bos_token, as lm-eval's
        tok_encode), the prefix token and max_length, for lm-eval's rolling windows."""
        return self._tok_encode(text, add_special_tokens=bool(self.add_bos)), self._prefix_token(), self.max_length

    def loglikelihood_tokens(self, reqs: Sequence[Any]) -> list[LoglikelihoodResult]:
        """Token windows (`TokenLoglikelihoodRequest`), scored as `loglikelihood` scores pairs."""
        return self._score_pairs([(list(r.context), list(r.continuation)) for r in reqs])

    def _score_pairs(self, pairs: list[tuple[list[int], list[int]]]) -> list[LoglikelihoodResult]:
        torch = self._torch
        reqs = pairs
        # One forward pass per distinct context + continuation[:-1] (lm-eval's Collator
        # with group_by="contexts"), longest first, ties by token ids.
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, (ctx, cont) in enumerate(pairs):
            groups.setdefault(tuple(ctx + cont[:-1]), []).append(i)
        keys = sorted(groups, key=lambda k: (-len(k), k))
        results: list[LoglikelihoodResult | None] = [None] * len(reqs)
        for batch in padding_aware_batches(keys, self.batch_size):
            inputs = [list(k[-self.max_length :]) for k in batch]
            longests = [max(len(pairs[i][1]) for i in groups[key]) for key in batch]
            logits, column = self._scored_logits(inputs, longests)
            for row, key in enumerate(batch):
                n_in, longest = len(inputs[row]), longests[row]
                cols = [column[p] for p in range(n_in - longest, n_in)]
                # log-softmax in the logits' dtype, as lm-eval does (softmax_dtype=None)
                logp = torch.log_softmax(logits[row, cols], dim=-1)
                greedy_ids = logp.argmax(dim=-1)
                for i in groups[key]:
                    ctx, cont = pairs[i]
                    cont_t = torch.tensor(cont, dtype=torch.long, device=self.device)
                    rows = logp[longest - len(cont) :]
                    token_logprobs = rows.gather(1, cont_t.unsqueeze(-1)).squeeze(-1)
                    results[i] = LoglikelihoodResult(
                        logprob=float(token_logprobs.sum()),
                        is_greedy=bool((greedy_ids[longest - len(cont) :] == cont_t).all()),
                        n_tokens=len(cont),
                        n_context_tokens=min(len(ctx), n_in + 1 - len(cont)),
                        token_logprobs=tuple(token_logprobs.tolist()),  # one copy off the device
                        n_truncated_tokens=max(0, len(key) - self.max_length),
                    )
        return [r for r in results if r is not None]

    def token_stats(self, reqs: Sequence[TokenStatsRequest]) -> list[TokenStats]:
        """Per-token distribution statistics, one unpadded forward pass per request over the
        tokens `loglikelihood` would score (only the continuation's positions reach the
        output layer where the model allows it)."""
        torch = self._torch
        out = []
        for req in reqs:
            ctx, cont = self._encode_pair(req)
            if len(cont) > self.max_length:
                raise LlmassayError(f"hf: continuation {req.continuation[:40]!r} is {len(cont)} tokens, "
                                    f"more than max_length {self.max_length}")
            whole = ctx + cont[:-1]
            ids = torch.tensor([whole[-self.max_length :]], dtype=torch.long, device=self.device)
            kwargs = {"logits_to_keep": len(cont)} if self._keeps_logits else {}
            with torch.no_grad():
                logits = self.model(ids, **kwargs).logits[0, -len(cont) :]
            self.tokens_evaluated += ids.shape[1]
            acc = StatsAccumulator(cont)
            acc.add(logits.float().cpu().numpy())
            out.append(acc.result(min(len(ctx), ids.shape[1] + 1 - len(cont)), max(0, len(whole) - self.max_length)))
        return out

    def _scored_logits(self, inputs: list[list[int]], longests: list[int]) -> tuple[Any, dict[int, int]]:
        """One forward pass over right-padded `inputs`; returns the logits at the positions
        that predict continuation tokens (row r: its last `longests[r]` positions) and the
        map from such a position to its column in the logits.

        A token prefix that every input shares (a few-shot block, a fixed instruction) is
        read once and kept as a KV cache across batches: each batch then reads only what
        follows it, where lm-eval re-reads the prefix for every request."""
        torch = self._torch
        prefix = self._shared_prefix(inputs, longests)
        past = self._prefix_cache(inputs[0][:prefix], len(inputs)) if prefix else None
        width = max(len(x) for x in inputs) - prefix
        ids = torch.zeros((len(inputs), width), dtype=torch.long)  # right-padded with 0
        for row, seq in enumerate(inputs):
            ids[row, : len(seq) - prefix] = torch.tensor(seq[prefix:], dtype=torch.long)
        ids = ids.to(self.device)
        # Only the positions that predict a continuation token go through the output
        # layer (≈20 % of SmolLM2's FLOPs): their union over the batch's rows.
        keep = sorted({p for seq, n in zip(inputs, longests) for p in range(len(seq) - n, len(seq))})
        kwargs: dict[str, Any] = {self._cache_arg: past, "use_cache": past is not None}
        with torch.no_grad():  # causal: padding on the right is never seen
            if self._keeps_logits:
                positions = torch.tensor([p - prefix for p in keep], device=self.device)
                logits = self.model(ids, logits_to_keep=positions, **kwargs).logits
                column = {p: c for c, p in enumerate(keep)}
            else:
                logits, column = self.model(ids, **kwargs).logits, {p: p - prefix for p in keep}
        self.tokens_evaluated += sum(len(x) - prefix for x in inputs)
        return logits, column

    def _shared_prefix(self, inputs: list[list[int]], longests: list[int]) -> int:
        """Tokens at the start of every input to serve from a KV cache (0: none): the cached
        prefix when all inputs start with it, else the batch's common prefix when it is
        long enough to pay for its own pass. It stops before any position whose logits are
        needed."""
        if not self._reuses_prefix:
            return 0
        limit = min(len(seq) - n for seq, n in zip(inputs, longests))
        first = inputs[0]
        common = 0
        while common < limit and all(seq[common] == first[common] for seq in inputs):
            common += 1
        if self._kv_prefix is not None:
            cached = self._kv_prefix[0]
            if len(cached) <= common and tuple(first[: len(cached)]) == cached:
                return len(cached)
        return common if len(inputs) > 1 and common >= MIN_SHARED_PREFIX else 0

    def _prefix_cache(self, prefix: list[int], batch: int) -> Any:
        """The KV cache of `prefix`, computed once per distinct prefix, copied per batch
        (a forward pass appends to the cache it is given)."""
        torch = self._torch
        key = tuple(prefix)
        if self._kv_prefix is None or self._kv_prefix[0] != key:
            with torch.no_grad():
                ids = torch.tensor([prefix], dtype=torch.long, device=self.device)
                out = self.model(ids, use_cache=True, logits_to_keep=1)
            self._kv_prefix = (key, getattr(out, self._cache_arg))
            self.tokens_evaluated += len(prefix)
        cache = copy.deepcopy(self._kv_prefix[1])
        cache.batch_repeat_interleave(batch)
        return cache

    def generate(self, reqs: Sequence[GenerateRequest]) -> list[Generation]:
        """Greedy requests with the same settings run in left-padded batches of up to
        `batch_size`, same text as one by one (3.6× faster on bench/generate_until.py's
        few-shot prompts); sampled ones alone."""
        fitted = [self._prompt_ids(r) for r in reqs]
        prompts = [ids for ids, _ in fitted]
        results: list[Generation | None] = [None] * len(reqs)
        for batch in generation_batches(reqs, [len(p) for p in prompts], self.batch_size):
            for i, g in zip(batch, self._generate_batch([reqs[i] for i in batch], [prompts[i] for i in batch])):
                results[i] = dataclasses.replace(g, n_truncated_tokens=fitted[i][1])
        return [g for g in results if g is not None]

    # -- tokenisation (lm-eval's tok_encode / _encode_pair) ------------------------------
    def _tok_encode(self, text: str, add_special_tokens: bool | None = None) -> list[int]:
        kwargs: dict[str, Any] = {}
        if add_special_tokens is not None:
            kwargs["add_special_tokens"] = add_special_tokens
        elif self.add_bos is not None:
            kwargs["add_special_tokens"] = self.add_bos
        if add_special_tokens is None and self._bos_text and text.startswith(self._bos_text):
            kwargs["add_special_tokens"] = False  # the text already carries its BOS
        return list(self.tokenizer.encode(text, **kwargs))

    def _encode_pair(self, req: LoglikelihoodRequest) -> tuple[list[int], list[int]]:
        pair = self._encode_pair_cached(req)
        return list(pair.context), list(pair.continuation)

    def _encode_pair_uncached(self, req: LoglikelihoodRequest) -> EncodedPair:
        return encode_pair(
            req,
            self._tok_encode,
            self._prefix_token(),
            encode_plain=lambda text: self._tok_encode(text, add_special_tokens=False),
        )

    def request_order(self, req: LoglikelihoodRequest | GenerateRequest) -> tuple[Any, ...]:
        """The engine's sort key: longest input in tokens first, so each of the engine's
        batches holds inputs of neighbouring lengths and the padded batches of
        `batch_size` waste little (ordering by characters padded 17 % more on MMLU)."""
        if isinstance(req, LoglikelihoodRequest):
            ctx, cont = self._encode_pair(req)
            return (-(len(ctx) + len(cont)), req.context, req.continuation)
        return (-req.size(), req.prompt or "")

    def _prefix_token(self) -> int:
        tok = self.tokenizer
        for candidate in (tok.bos_token_id, tok.eos_token_id):
            if candidate is not None:
                return int(candidate)
        raise LlmassayError("hf: tokenizer has neither BOS nor EOS for an empty context")

    # -- generation -----------------------------------------------------------------------
    def _prompt_ids(self, req: GenerateRequest) -> tuple[list[int], int]:
        """The prompt's tokens, cut from the left so that prompt + max_tokens fit max_length
        (lm-eval's generate_until rule), and how many were cut (reported per generation)."""
        if req.max_tokens >= self.max_length:
            raise LlmassayError(f"hf: max_tokens {req.max_tokens} must be below max_length {self.max_length}")
        if req.messages is not None:
            # As lm-eval: render the template to text, then encode it like any prompt
            # (a rendered text that starts with the BOS string gets no second BOS).
            messages = [{"role": r, "content": c} for r, c in req.messages]
            prompt = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        else:
            prompt = req.prompt or ""
        ids = self._tok_encode(prompt)
        cut = max(0, len(ids) - (self.max_length - req.max_tokens))
        return (ids[cut:] or [self._prefix_token()]), cut

    def generate_stream(self, req: GenerateRequest) -> Any:
        """`req` token by token, for timing (TTFT, inter-token latency)."""
        from llmassay.backends._streaming import hf_stream

        return hf_stream(self, req)

    def _generate_batch(self, reqs: list[GenerateRequest], prompts: list[list[int]],
                        streamer: Any = None) -> list[Generation]:
        """One `model.generate` call over requests that share their decoding settings
        (`_hf_batching.batch_key`), left-padded under an attention mask; a row's latency
        is its share of the call's time."""
        torch, req = self._torch, reqs[0]
        pad = self.tokenizer.pad_token_id
        pad = pad if pad is not None else self._prefix_token()
        # A prefix every prompt shares (a fixed few-shot block) comes from the KV cache; the
        # padding goes between it and each prompt's own tail, masked out. Not for a sampled
        # request: its text must not hang on what an earlier batch left in the cache, even
        # by float rounding.
        prefix = 0 if req.temperature > 0 else self._shared_prefix(prompts, [1] * len(prompts))
        tail = max(len(p) for p in prompts) - prefix
        width = prefix + tail
        ids = torch.tensor([p[:prefix] + [pad] * (width - len(p)) + p[prefix:] for p in prompts], dtype=torch.long,
                           device=self.device)
        mask = torch.tensor([[1] * prefix + [0] * (width - len(p)) + [1] * (len(p) - prefix) for p in prompts],
                            device=self.device)
        stops = None
        if req.stop:
            from transformers import StopStringCriteria

            stops = StopStringCriteria(tokenizer=self.tokenizer, stop_strings=list(req.stop))
        ends = row_stops(width, self._eos_ids(), stops)
        gen_kwargs: dict[str, Any] = {"max_new_tokens": req.max_tokens, "pad_token_id": pad, "stopping_criteria": [ends]}
        if prefix:
            gen_kwargs[self._cache_arg] = self._prefix_cache(prompts[0][:prefix], len(prompts))
        if req.temperature > 0:
            torch.manual_seed(req.seed + req.repeat)
            gen_kwargs.update(do_sample=True, temperature=req.temperature, top_k=None, top_p=None)
        else:
            gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if req.json_schema is not None or req.grammar is not None:
            gen_kwargs["logits_processor"] = [self._grammar_processor(reqs)]
        if req.watermark is not None:  # batch_key keeps one watermark per batch
            from llmassay.watermark.processor import hf_processor

            gen_kwargs.setdefault("logits_processor", []).insert(0, hf_processor(req.watermark))
        if streamer is not None:
            gen_kwargs["streamer"] = streamer
        start = time.perf_counter()
        with torch.no_grad():
            out = self.model.generate(ids, attention_mask=mask, **gen_kwargs)
        latency = (time.perf_counter() - start) / len(reqs)
        generations = []
        for row, (r, prompt_ids) in enumerate(zip(reqs, prompts)):
            n_new = (ends.lengths[row] if ends.lengths else None) or out.shape[1] - width
            new_tokens = out[row, width : width + n_new].tolist()
            text = self.tokenizer.decode(new_tokens, skip_special_tokens=True)
            finish = "length" if len(new_tokens) >= r.max_tokens else "stop"
            cuts = [i for i in (text.find(s) for s in r.stop if s) if i >= 0]
            if cuts:  # transformers keeps the stop string; the Protocol drops it
                text, finish = text[: min(cuts)], "stop"
            self.tokens_evaluated += len(prompt_ids) - prefix + len(new_tokens)
            generations.append(
                Generation(
                    text=text,
                    n_prompt_tokens=len(prompt_ids),
                    n_tokens=len(new_tokens),
                    finish_reason=finish,
                    latency_s=latency,
                )
            )
        return generations

    def _eos_ids(self) -> list[int]:
        """The ids that end a generation: the model's generation config, as transformers uses."""
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            return []
        return [int(e) for e in eos] if isinstance(eos, (list, tuple)) else [int(eos)]

    def _grammar_processor(self, reqs: Sequence[GenerateRequest]) -> Any:
        """A fresh xgrammar logits processor for a batch: each row under its request's JSON
        schema or GBNF grammar.

        xgrammar, not outlines or lm-format-enforcer: measured in README (Structured output):
        outlines 1.3.3 was ~3.7x slower per token, lm-format-enforcer 0.11.3's transformers
        integration does not import under transformers 5.x."""
        try:
            import xgrammar
            from xgrammar.contrib.hf import LogitsProcessor
        except ImportError as exc:
            raise LlmassayError(f"hf: constrained decoding needs xgrammar ({exc}); pip install 'llmassay[hf]'") from None
        compiler = getattr(self, "_grammar_compiler", None)
        if compiler is None:
            config = getattr(self.model.config, "text_config", None) or self.model.config
            info = xgrammar.TokenizerInfo.from_huggingface(self.tokenizer, vocab_size=int(config.vocab_size))
            compiler = self._grammar_compiler = xgrammar.GrammarCompiler(info)
        compiled = []
        for req in reqs:
            try:
                if req.json_schema is not None:
                    compiled.append(compiler.compile_json_schema(req.json_schema))
                else:
                    compiled.append(compiler.compile_grammar(req.grammar))
            except (RuntimeError, ValueError) as exc:
                what = "schema" if req.json_schema is not None else "grammar"
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise LlmassayError(f"hf: xgrammar cannot compile the {what}: {reason}") from None
        return LogitsProcessor(compiled)


def _resolve_max_length(config: Any, tokenizer: Any) -> int:
    """lm-eval's resolve_max_length: the text config's length, else the tokenizer's."""
    cfg = getattr(config, "text_config", None) or config
    for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(cfg, attr, None)
        if value is not None:
            return int(value)
    limit = getattr(tokenizer, "model_max_length", None)
    if limit is not None and limit != _TOKENIZER_INFINITY:
        return int(limit)
    return DEFAULT_MAX_LENGTH
