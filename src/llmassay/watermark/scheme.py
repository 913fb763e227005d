"""The watermark's key schedule: which (context, token) pairs are green.

Kirchenbauer et al. seed a framework RNG with a hash of the previous token and draw a
permutation of the vocabulary; the same ids then give different green lists on torch,
vLLM and TGI (lm-watermarking #40, TGI #2474). Here the green list is a pure function
of integers, the same on every backend and machine:

    seed(ctx)     = first 8 bytes (little-endian) of HMAC-SHA256(key, b"llmassay-wm/1" + ctx as uint32 LE)
    green(ctx, t) = splitmix64(seed(ctx) XOR t * 0x9E3779B97F4A7C15) < floor(gamma * 2**64)

Schemes (the context `ctx` of the token at position i):
* `prev`: the previous token (lm-watermarking's LeftHash, h = 1);
* `selfhash`: a window of `h` tokens that includes the token itself — the h - 1 tokens
  before it are HMAC'd and the token salts the result. Unlike lm-watermarking's
  `selfhash` the window is hashed whole (no min-hash anchor), so one edited token
  breaks h windows; `prev` breaks two.

Because the token salts its own membership, each token is green with probability gamma
independently of the text under a key the text was not written with: the z-test's null.
Arithmetic is uint64 in numpy, which wraps identically everywhere.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from llmassay.types import LlmassayError

SCHEMES = ("prev", "selfhash")
DOMAIN = b"llmassay-wm/1"
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


@dataclass(frozen=True)
class WatermarkConfig:
    """gamma: share of green tokens; delta: logit bias added to green tokens; h: selfhash window."""

    key: str
    gamma: float = 0.25
    delta: float = 2.0
    scheme: str = "selfhash"
    h: int = 4

    def __post_init__(self) -> None:
        if not self.key:
            raise LlmassayError("watermark: key must not be empty")
        if not 0.0 < self.gamma < 1.0:
            raise LlmassayError(f"watermark: gamma {self.gamma} must lie strictly between 0 and 1")
        if not math.isfinite(self.delta) or self.delta < 0:
            raise LlmassayError(f"watermark: delta {self.delta} must be a finite number >= 0")
        if self.scheme not in SCHEMES:
            raise LlmassayError(f"watermark: scheme '{self.scheme}' is not one of {', '.join(SCHEMES)}")
        if self.scheme == "selfhash" and not 2 <= self.h <= 16:
            raise LlmassayError(f"watermark: selfhash window h={self.h} must be from 2 to 16")

    @property
    def width(self) -> int:
        """Tokens before position i that seed its green list (the first `width` tokens of a text are not scored)."""
        return 1 if self.scheme == "prev" else self.h - 1

    @property
    def threshold(self) -> np.uint64:
        return np.uint64(min(int(self.gamma * 2**64), 2**64 - 1))

    def spec(self) -> str:
        """A canonical one-line form (what a GenerateRequest carries, so requests stay hashable)."""
        return f"key={self.key},gamma={self.gamma!r},delta={self.delta!r},scheme={self.scheme},h={self.h}"

    @staticmethod
    def from_spec(spec: str) -> WatermarkConfig:
        fields: dict[str, str] = {}
        for part in spec.split(","):
            name, sep, value = part.partition("=")
            if not sep or name not in ("key", "gamma", "delta", "scheme", "h"):
                raise LlmassayError(f"watermark spec: '{part}' is not one of key=, gamma=, delta=, scheme=, h=")
            fields[name] = value
        try:
            return WatermarkConfig(
                key=fields.get("key", ""),
                gamma=float(fields.get("gamma", 0.25)),
                delta=float(fields.get("delta", 2.0)),
                scheme=fields.get("scheme", "selfhash"),
                h=int(fields.get("h", 4)),
            )
        except ValueError as exc:
            raise LlmassayError(f"watermark spec '{spec}': {exc}") from None


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser on a uint64 array (wrapping multiplication)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


@lru_cache(maxsize=64)
def _hmac_pads(key: str) -> tuple[Any, Any]:
    """SHA-256 states after the key's inner and outer pads (RFC 2104): per message, HMAC is
    then two copies and two updates, ~2.7x faster than `hmac.digest` (which sets the key up
    again each call); the bytes are the same (tests/test_watermark.py checks against hmac)."""
    k = key.encode("utf-8")
    if len(k) > 64:
        k = hashlib.sha256(k).digest()
    k = k.ljust(64, b"\0")
    return hashlib.sha256(bytes(c ^ 0x36 for c in k)), hashlib.sha256(bytes(c ^ 0x5C for c in k))


def context_seeds(key: str, contexts: np.ndarray) -> np.ndarray:
    """HMAC-SHA256 seeds (uint64) of each row of `contexts` (shape (m, width), token ids)."""
    rows = np.ascontiguousarray(contexts, dtype="<u4")
    width = rows.shape[1] * 4
    buf = rows.tobytes()
    inner, outer = _hmac_pads(key)
    out = bytearray()
    for i in range(0, len(buf), width):
        h = inner.copy()
        h.update(DOMAIN + buf[i : i + width])
        o = outer.copy()
        o.update(h.digest())
        out += o.digest()[:8]
    return np.frombuffer(bytes(out), dtype="<u8").astype(np.uint64)


def is_green(seeds: np.ndarray, tokens: np.ndarray, threshold: np.uint64) -> np.ndarray:
    """Membership of `tokens` under per-token `seeds` (broadcast: one seed against a whole vocabulary works)."""
    mixed = splitmix64(np.asarray(seeds, dtype=np.uint64) ^ (np.asarray(tokens, dtype=np.uint64) * _GOLDEN))
    return mixed < threshold


class GreenList:
    """The green list of one config, as the logits processor needs it: the mask over a
    vocabulary after a given context (the arange of token ids is kept between steps)."""

    def __init__(self, cfg: WatermarkConfig) -> None:
        self.cfg = cfg
        self._vocab = np.arange(0, dtype=np.uint64)

    def mask(self, context: np.ndarray, n_vocab: int) -> np.ndarray:
        if len(self._vocab) != n_vocab:
            self._vocab = np.arange(n_vocab, dtype=np.uint64)
        seed = context_seeds(self.cfg.key, np.asarray(context[-self.cfg.width :]).reshape(1, -1))[0]
        return is_green(seed, self._vocab, self.cfg.threshold)

    def bias(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """scores (vocab,) + delta on green tokens; unchanged while fewer than `width` tokens exist."""
        if len(input_ids) < self.cfg.width:
            return scores
        out = np.array(scores, dtype=np.float32, copy=True)
        out[self.mask(np.asarray(input_ids), out.shape[-1])] += self.cfg.delta
        return out
