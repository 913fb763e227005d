"""`llmassay assess`: every probe's preset on one model, as one run and one report.

Each probe declares its own presets (bundled tasks, a limit, options) in its own file,
so a probe added later joins `assess` without an edit here.
"""

from __future__ import annotations

from typing import Any

from llmassay.evaluation import RunConfig
from llmassay.probes._registry import probe_class, probe_targets
from llmassay.types import LlmassayError


def assess_config(
    model: str,
    output_path: str,
    preset: str = "quick",
    probes: list[str] | None = None,
    overrides: dict[str, Any] | None = None,
    **run_args: Any,
) -> RunConfig:
    """The RunConfig that runs `preset` of each probe (all with that preset by default);
    `overrides` ("probe.key" → value) win over a preset's options."""
    names = probes or [p for p in probe_targets() if preset in probe_class(p).presets]
    jobs: list[tuple[str, str, int | None]] = []
    options: dict[str, Any] = {}
    for name in names:
        presets = probe_class(name).presets
        if preset not in presets:
            raise LlmassayError(f"--probe {name}: it has no '{preset}' preset (it has: {', '.join(presets) or 'none'})")
        chosen = presets[preset]
        jobs += [(task, name, chosen.limit) for task in chosen.tasks]
        options.update({f"{name}.{key}": value for key, value in chosen.options})
    if not jobs:
        raise LlmassayError(f"no probe has a '{preset}' preset")
    options.update(overrides or {})
    tasks = list(dict.fromkeys(t for t, _, _ in jobs))
    return RunConfig(model=model, tasks=tasks, probes=names, output_path=output_path, probe_options=options,
                     jobs=jobs, preset=preset, **run_args)
