"""The causal-tracing figure as SVG (the report's matplotlib setup): ROME's Figure 2 layout —
mean indirect effect per token group × layer for hidden states and for windowed MLP
restorations — and the MLP effect at the subject's last token with its 95 % CI band."""

from __future__ import annotations

import math
from typing import Any

from llmassay.report.plots import PALETTE, _figure, _svg

_CMAP = {"state": "Purples", "mlp": "Greens"}
_TITLE = {"state": "restoring one layer's output (hidden state)", "mlp": "restoring MLP outputs (window {w})"}


def trace_figure(trace: dict[str, Any], marked_layer: int | None = None) -> str:
    """`trace` is trace.json's content; `marked_layer` (e.g. the layer an edit used) is drawn
    beside the suggested one on the bottom panel."""
    effects = trace["mean_indirect_effect"]
    n_layers = int(trace["n_layers"])
    groups = list(effects["mlp"])
    kinds = [k for k in ("state", "mlp") if k in effects]
    window = trace["config"]["window"]
    with _figure("causal-trace", 7.0, 2.2 * len(kinds) + 2.4) as fig:
        axes = fig.subplots(len(kinds) + 1, 1)
        for ax, kind in zip(axes, kinds):
            matrix = [[_nan(cell["value"]) for cell in effects[kind][g]] for g in groups]
            image = ax.imshow(matrix, cmap=_CMAP[kind], aspect="auto", vmin=0.0, interpolation="nearest")
            ax.set_yticks(range(len(groups)), [f"{g} (n={effects[kind][g][0]['n']})" for g in groups])
            ax.set_xticks(range(0, n_layers, 2))
            ax.set_title(f"{_TITLE[kind].format(w=window)}: mean effect on P(true object)")
            ax.spines[:].set_visible(False)
            fig.colorbar(image, ax=ax, shrink=0.9, label="indirect effect")
        ax = axes[-1]
        last = effects["mlp"]["subject last"]
        xs = list(range(n_layers))
        ax.fill_between(xs, [_nan(c["ci_low"]) for c in last], [_nan(c["ci_high"]) for c in last],
                        color=PALETTE[2], alpha=0.25, linewidth=0, label="95 % CI over prompts")
        ax.plot(xs, [_nan(c["value"]) for c in last], "o-", color=PALETTE[2], markersize=3,
                label=f"MLP (window {window}) at the subject's last token")
        suggested = trace.get("suggested_layer")
        if suggested:
            ax.axvline(suggested["layer"], color=PALETTE[0], linestyle="--", linewidth=1,
                       label=f"peak: layer {suggested['layer']} "
                             f"(bootstrap {suggested['ci_low']:.0f}–{suggested['ci_high']:.0f})")
        if marked_layer is not None:
            ax.axvline(marked_layer, color=PALETTE[1], linestyle=":", linewidth=1.2, label=f"layer {marked_layer}")
        ax.set_xlabel("layer (centre of the restored MLP window)")
        ax.set_ylabel("indirect effect")
        ax.set_xticks(range(0, n_layers, 2))
        ax.legend(fontsize=7, frameon=False)
        fig.suptitle(f"Causal trace: {trace['n_prompts']} prompts, {trace['config']['samples']} noise draws each, "
                     f"noise {trace['config']['noise_factor']}×σ", fontsize=9)
        return _svg(fig)


def _nan(value: Any) -> float:
    return math.nan if value is None else float(value)
