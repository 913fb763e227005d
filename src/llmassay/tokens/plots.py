"""Figures for the token probes (matplotlib, Agg backend: files only, no display)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from llmassay.tokens.premium import PremiumTable


def premium_plot(table: PremiumTable, path: Path) -> Path:
    """Premium vs English per language, one bar per tokenizer, 95 % bootstrap CIs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tokenizers = list(dict.fromkeys(r.tokenizer for r in table.rows))
    languages = list(dict.fromkeys(r.language for r in table.rows))
    width = 0.8 / max(1, len(tokenizers))
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(languages) + 2), 4))
    x = np.arange(len(languages))
    for k, tok in enumerate(tokenizers):
        by_lang = {r.language: r.premium for r in table.rows if r.tokenizer == tok}
        vals = np.array([by_lang[lang].value if lang in by_lang else np.nan for lang in languages])
        low = np.array([by_lang[lang].ci_low if lang in by_lang else np.nan for lang in languages])
        high = np.array([by_lang[lang].ci_high if lang in by_lang else np.nan for lang in languages])
        err = np.nan_to_num(np.vstack([vals - low, high - vals]))
        ax.bar(x + k * width - 0.4 + width / 2, vals, width, yerr=err, capsize=2, label=tok)
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_xticks(x, languages)
    ax.set_ylabel("tokens / English tokens (same content)")
    ax.set_title(f"Token premium vs English ({table.source}), 95 % bootstrap CI over items")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
