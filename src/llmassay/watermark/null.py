"""Null calibration for free: human text scored under many random keys.

A text written without key K is, under K, a sequence of independent gamma-coin flips, so
windows of human text scored under 1,000 keys give ~10^5 null z-scores without
generating anything. The empirical false-positive rate at z = 4 is then measured, not
assumed (theory: 1 - Phi(4) = 3.17e-5); the count over all positions shows what
repeated (context, token) pairs do to it (lm-watermarking #20).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from llmassay.metrics import proportion
from llmassay.types import Metric
from llmassay.watermark.detect import Z_DEFAULT, p_normal
from llmassay.watermark.scheme import WatermarkConfig, context_seeds, is_green


def human_text() -> str:
    """The bundled public-domain prose (data/ATTRIBUTION.md)."""
    return resources.files("llmassay.watermark").joinpath("data/news_from_nowhere.txt").read_text(encoding="utf-8")


@dataclass
class NullCalibration:
    n_keys: int
    window: int
    n_windows: int
    z: np.ndarray  # (n_keys, n_windows): distinct pairs counted once
    z_all: np.ndarray  # every position counted

    def summary(self, threshold: float = Z_DEFAULT) -> dict[str, Any]:
        def rate(z: np.ndarray) -> Metric:
            flagged = int((z.ravel() > threshold).sum())
            return proportion([True] * flagged + [False] * (z.size - flagged))

        return {
            "n_keys": self.n_keys,
            "window_tokens": self.window,
            "n_windows": self.n_windows,
            "n_z": int(self.z.size),
            "threshold_z": threshold,
            "theoretical_fpr": p_normal(threshold),
            "fpr": rate(self.z).as_dict(),
            "fpr_all_positions": rate(self.z_all).as_dict(),
            "z_mean": float(self.z.mean()),
            "z_sd": float(self.z.std()),
            "z_all_sd": float(self.z_all.std()),
        }


def null_zscores(ids: list[int], cfg: WatermarkConfig, n_keys: int = 1000, window: int = 200, seed: int = 0) -> NullCalibration:
    """z of each `window`-token stretch of `ids` under `n_keys` keys derived from `seed`
    (cfg.key is ignored; its gamma, scheme and h are kept)."""
    arr = np.asarray(ids, dtype=np.int64)
    width = cfg.width
    pairs = np.lib.stride_tricks.sliding_window_view(arr, width + 1)
    n_windows = len(pairs) // window
    if n_windows == 0:
        raise ValueError(f"the text has {len(arr)} tokens, fewer than one window of {window} + {width}")
    pairs = pairs[: n_windows * window]
    contexts, inverse = np.unique(pairs[:, :width], axis=0, return_inverse=True)
    _, pair_id = np.unique(pairs, axis=0, return_inverse=True)
    which = np.repeat(np.arange(n_windows), window)
    _, first_idx = np.unique(which * (int(pair_id.max()) + 1) + pair_id.reshape(-1), return_index=True)
    first = np.zeros(len(pairs), dtype=bool)
    first[first_idx] = True
    tokens = pairs[:, width].astype(np.uint64)
    inverse = inverse.reshape(-1)
    n_first = np.bincount(which, weights=first, minlength=n_windows)
    gamma = cfg.gamma
    z = np.empty((n_keys, n_windows))
    z_all = np.empty((n_keys, n_windows))
    for k in range(n_keys):
        key_cfg = dataclasses.replace(cfg, key=f"null-{seed}-{k}")
        green = is_green(context_seeds(key_cfg.key, contexts)[inverse], tokens, key_cfg.threshold)
        g_all = green.reshape(n_windows, window).sum(axis=1)
        g = np.bincount(which, weights=green & first, minlength=n_windows)
        z_all[k] = (g_all - gamma * window) / math.sqrt(window * gamma * (1 - gamma))
        z[k] = (g - gamma * n_first) / np.sqrt(n_first * gamma * (1 - gamma))
    return NullCalibration(n_keys, window, n_windows, z, z_all)
