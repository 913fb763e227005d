"""The spike-entropy bound: how green a watermarked text can get on this model at all.

Kirchenbauer et al. (Theorem 4.2): with alpha = e^delta, a token drawn from a
distribution p after the green-list bias is green with probability at least
gamma alpha S / (1 + (alpha - 1) gamma), where S = sum_k p_k / (1 + zeta p_k) is p's spike
entropy at modulus zeta = (1 - gamma)(alpha - 1) / (1 + (alpha - 1) gamma). A confident model
(p close to one-hot: S close to 1 / (1 + zeta)) gains little green share from the bias, and
the z of T tokens grows only as sqrt(T) (g - gamma): low entropy costs length.
"""

from __future__ import annotations

import math

import numpy as np


def modulus(gamma: float, delta: float) -> float:
    alpha = math.exp(delta)
    return (1 - gamma) * (alpha - 1) / (1 + (alpha - 1) * gamma)


def spike_entropy(logits: np.ndarray, gamma: float, delta: float) -> np.ndarray:
    """Spike entropy of each row of `logits` (positions × vocabulary) at the watermark's modulus."""
    z = logits - logits.max(axis=-1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=-1, keepdims=True)
    return (p / (1 + modulus(gamma, delta) * p)).sum(axis=-1)


def green_bound(mean_spike_entropy: float, gamma: float, delta: float) -> float:
    """The expected green fraction's lower bound at a given mean spike entropy."""
    alpha = math.exp(delta)
    return gamma * alpha * mean_spike_entropy / (1 + (alpha - 1) * gamma)
