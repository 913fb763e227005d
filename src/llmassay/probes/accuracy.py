"""Plain task scoring, the baseline every other probe perturbs.

Multiple choice is scored three ways from one run, because they disagree and users
should see by how much: summed log-likelihood (`acc`), log-likelihood per character
(`acc_norm`, as lm-eval; per UTF-8 byte is `acc_bytes`) and the answer the model writes (`acc_gen`).
Generation tasks are scored by exact match after normalisation.
"""

from __future__ import annotations

from typing import Any

from llmassay.engine.engine import Engine
from llmassay.metrics import exact_match, proportion
from llmassay.probes._mc import MCItem, score_multiple_choice
from llmassay.probes.base import ProbeConfig
from llmassay.tasks.loader import Task
from llmassay.types import GenerateRequest, Metric, Sample


class AccuracyProbe:
    name = "accuracy"

    def evaluate(self, task: Task, samples: list[Sample], engine: Engine, cfg: ProbeConfig) -> list[dict[str, Any]]:
        if task.output_type == "multiple_choice":
            return self._multiple_choice(task, samples, engine, cfg)
        return self._generation(task, samples, engine, cfg)

    def _multiple_choice(
        self, task: Task, samples: list[Sample], engine: Engine, cfg: ProbeConfig
    ) -> list[dict[str, Any]]:
        delim = task.target_delimiter
        generate = "acc_gen" in task.metrics
        items = [MCItem(s.prompt, tuple(s.choices or ())) for s in samples]
        rows = []
        for sample, score in zip(samples, score_multiple_choice(engine, items, delim, cfg, generate)):
            choices = sample.choices or []
            row: dict[str, Any] = {
                "id": sample.id,
                "prompt": sample.prompt,
                "choices": [delim + c for c in choices],
                "target": sample.target,
                "loglikelihoods": list(score.loglikelihoods),
                "is_greedy": list(score.is_greedy),
                "pred": score.pred,
                "pred_norm": score.pred_norm(choices),
                "acc": score.pred == sample.target,
                "acc_norm": score.pred_norm(choices) == sample.target,
            }
            if "acc_bytes" in task.metrics:
                row.update(pred_bytes=score.pred_bytes(choices), acc_bytes=score.pred_bytes(choices) == sample.target)
            if generate:
                parsed = score.pred_gen(choices)
                row.update(generation=score.generation, pred_gen=parsed, acc_gen=parsed == sample.target)
            rows.append(row)
        return rows

    def _generation(self, task: Task, samples: list[Sample], engine: Engine, cfg: ProbeConfig) -> list[dict[str, Any]]:
        kwargs = task.generation_kwargs
        requests = [
            GenerateRequest(
                prompt=s.prompt,
                max_tokens=kwargs["max_gen_toks"],
                stop=tuple(kwargs["until"]),
                temperature=cfg.temperature,
                seed=cfg.seed,
            )
            for s in samples
        ]
        return [
            {
                "id": s.id,
                "prompt": s.prompt,
                "target": s.target,
                "generation": g.text,
                "finish_reason": g.finish_reason,
                "n_tokens": g.n_tokens,
                "exact_match": exact_match(g.text, str(s.target)),
            }
            for s, g in zip(samples, engine.generate(requests))
        ]

    def aggregate(self, task: Task, rows: list[dict[str, Any]], cfg: ProbeConfig) -> dict[str, Metric]:
        metrics = {name: proportion([bool(r[name]) for r in rows]) for name in task.metrics}
        if "acc_gen" in task.metrics:
            metrics["gen_parsed"] = proportion([r.get("pred_gen") is not None for r in rows])
        return metrics
