"""Prompting strategies on any generation task, scored as accuracy per token spent.

Strategies (`-P strategies.strategies=…`):

- `zero_shot`: the task's prompt with no exemplars (the baseline every other is paired with);
- `icl1`, `icl3`, `icl5`: k worked exemplars drawn from the task, seeded per item; the
  largest k is also asked under `orders` other exemplar orders (a brittleness family: the
  spread of the orders' accuracies against its permutation null, and the share of items
  whose verdict flips with the order alone);
- `cot`: zero-shot chain of thought (Kojima et al.): "Let's think step by step.", then the
  answer is read by a second prompt, "Therefore, the answer is";
- `sc`: self-consistency (Wang et al.): `k` chains of thought sampled at `sc_temperature`,
  the majority answer (maj@k) and whether any is right (pass@k);
- `ltm`: least-to-most (Zhou et al.): decompose into sub-questions, solve them in order,
  then read the answer.

Every strategy's answer is read by the same rule (the first number when the reference is
a number, else the first line), so only the strategy differs. Tokens spent are the
backend's counts, prompt and generated, summed over every call the strategy made.
Per strategy: accuracy (Wilson CI), mean tokens (bootstrap CI), the paired accuracy
difference with zero-shot (bootstrap CI) and McNemar's exact test; the verdict says
whether a gain is significant and at how many times zero-shot's tokens. Several strategies
are tested against one baseline, so "significant" is judged on Holm-adjusted p-values: the
chance that any of them is called a gain by luck stays at α = 0.05.

Chat models: with `chat_template=auto`, every strategy except k-shot goes through the
chat template (a few-shot transcript stays raw, as the accuracy probe does); later stages
are further turns of the same conversation. Each row records whether it was used, and the
run which template (a hash of its text, `chat_template_id`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from llmassay.design import detectable_from_interval
from llmassay.engine.chat import chat_template_id
from llmassay.metrics import bootstrap_mean, exact_match, holm, mcnemar_exact, normalise_answer, proportion, spread_with_null
from llmassay.probes._answer_format import ANSWER_ONLY, NUMBER, instructed, is_number
from llmassay.probes._options import option
from llmassay.probes.base import Analysis, Preset, Probe, ProbeConfig, Row, SampleMetric, SummaryLine
from llmassay.types import GenerateRequest, Generation, LlmassayError, Metric, Sample

if TYPE_CHECKING:
    from llmassay.engine.engine import Engine
    from llmassay.tasks.loader import Task

BASELINE = "zero_shot"
STRATEGIES = ("zero_shot", "icl1", "icl3", "icl5", "cot", "sc", "ltm")
ALPHA = 0.05
COT_CUE = " Let's think step by step."
ANSWER_CUE = "\nTherefore, the answer is"
CHAT_ANSWER = "What is the final answer? " + ANSWER_ONLY
# Zero-shot in chat is told what the reasoning strategies' last turn is (`_answer_format`:
# asked the bare prompt, a chat model explains and is cut off).
LTM_DECOMPOSE = " Let's break this problem down into simpler sub-questions.\n1."
LTM_SOLVE = "\nNow let's answer the sub-questions one by one.\n"
REASONING_STOP = ("\nQuestion:", "\n\n\n")


def _names(spec: str) -> list[str]:
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in STRATEGIES]
    if unknown:
        raise ValueError(f"unknown strategies {', '.join(unknown)} (known: {', '.join(STRATEGIES)})")
    if not names:
        raise ValueError("no strategy given")
    return [BASELINE] + [n for n in dict.fromkeys(names) if n != BASELINE]


@dataclass(frozen=True)
class StrategiesOptions:
    strategies: str = option(",".join(STRATEGIES), "comma-separated: " + ", ".join(STRATEGIES) + " (zero_shot is always run)",
                             check=lambda s: _names(s) and None)
    k: int = option(5, "self-consistency samples (maj@k, pass@k)", minimum=2)
    sc_temperature: float = option(0.7, "temperature of the self-consistency samples", minimum=0.01)
    reasoning_tokens: int = option(128, "max tokens of a reasoning step (cot, sc, ltm)", minimum=1)
    orders: int = option(2, "other exemplar orders for the largest k-shot strategy (brittleness family)", minimum=0)
    chat_template: str = option("auto", "through the chat template: auto (chat models, all but k-shot), on, off",
                                choices=("auto", "on", "off"))


@dataclass
class Spent:
    """What one strategy produced for one item, and what it cost."""

    text: str = ""
    prompt_tokens: int = 0
    gen_tokens: int = 0
    reasoning: list[str] = field(default_factory=list)  # the reasoning steps' texts, in order
    capped: int = 0  # reasoning steps cut by `reasoning_tokens` (finish_reason "length")

    def add(self, g: Generation) -> None:
        self.prompt_tokens += g.n_prompt_tokens
        self.gen_tokens += g.n_tokens

    def add_step(self, g: Generation) -> None:
        self.add(g)
        self.reasoning.append(g.text)
        self.capped += g.finish_reason == "length"


def read_answer(text: str, target: str) -> str:
    """The answer a generation gives: its first number when the reference is a number
    (a short model writes "74 legs."), otherwise its first line."""
    line = text.strip().split("\n", 1)[0] if text.strip() else ""
    if is_number(target):
        found = NUMBER.search(line)
        return found.group(0) if found else normalise_answer(line)
    return normalise_answer(line)


def majority(answers: Sequence[str]) -> str:
    """Most frequent non-empty answer; ties go to the one given first ("" when none)."""
    counts = Counter(a for a in answers if a)
    if not counts:
        return ""
    best = max(counts.values())
    return next(a for a in answers if a and counts[a] == best)


class _Asker:
    """Builds one strategy stage's requests, raw or through the chat template, so the
    strategies differ only in what they say."""

    def __init__(self, engine: Engine, cfg: ProbeConfig, answer_tokens: int, stop: tuple[str, ...]) -> None:
        self.engine, self.cfg, self.answer_tokens, self.stop = engine, cfg, answer_tokens, stop

    def ask(self, convs: list[list[tuple[str, str]]], chat: bool, max_tokens: int, stop: tuple[str, ...],
            temperature: float = 0.0, repeat: int = 0) -> list[Generation]:
        """`convs`: per item, alternating (role, text) turns; raw prompts join them."""
        common: dict[str, Any] = dict(max_tokens=max_tokens, stop=stop, temperature=temperature, seed=self.cfg.seed,
                                      repeat=repeat)
        reqs = [GenerateRequest(messages=tuple(c), **common) if chat else
                GenerateRequest(prompt="".join(text for _, text in c), **common) for c in convs]
        return self.engine.generate(reqs)


class StrategiesProbe(Probe):
    name = "strategies"
    description = "zero-shot, k-shot, chain of thought, self-consistency, least-to-most: accuracy per token spent"
    challenge = "prompting strategy"
    task_types = ("generate_until",)
    Options = StrategiesOptions
    schema_version = 2  # 2: zero-shot in chat says "Reply with the answer only."; rows keep the reasoning steps
    sample_metrics = {
        "acc": SampleMetric(lambda row: {n: float(e["correct"]) for n, e in row["results"].items()},
                            "1 if the strategy's answer is right", family=True),
        "tokens": SampleMetric(lambda row: {n: e["prompt_tokens"] + e["gen_tokens"] for n, e in row["results"].items()},
                               "tokens spent (prompt + generated)", family=True, binary=False),
        "pass_at_k": SampleMetric(lambda row: float(row["results"]["sc"]["pass"]) if "sc" in row["results"] else None,
                                  "1 if any self-consistency sample is right"),
    }
    presets = {
        "quick": Preset(("arith_sample",), limit=6, options=(("strategies", "zero_shot,icl3,cot"), ("k", 3))),
        "full": Preset(("arith_sample", "legs_sample", "letters_sample"), limit=100),
    }

    def supports(self, task: Task) -> str | None:
        return super().supports(task) or (None if task.builder is not None else f"task '{task.name}' cannot be re-rendered")

    # -- per sample -----------------------------------------------------------------------
    def evaluate(self, task: Task, samples: list[Sample], engine: Engine, opts: Any, cfg: ProbeConfig) -> list[Row]:
        names = _names(opts.strategies)
        kwargs = task.generation_kwargs
        asker = _Asker(engine, cfg, kwargs["max_gen_toks"], tuple(kwargs["until"]))
        zero = [self._render(task, s, 0, cfg) for s in samples]
        results: dict[str, list[Spent]] = {}
        extra: dict[str, list[list[str]]] = {}
        chat = {n: self._chat(n, opts, cfg) for n in names}
        for name in names:
            if name == BASELINE:
                results[name] = self._direct(asker, [instructed(z.prompt, ANSWER_ONLY if chat[name] else "")
                                                     for z in zero], chat[name])
            elif name.startswith("icl"):
                k = int(name[3:])
                results[name] = self._direct(asker, [self._render(task, s, k, cfg).prompt for s in samples], chat[name])
                if k == max(int(n[3:]) for n in names if n.startswith("icl")) and k > 1:
                    for j in range(1, opts.orders + 1):
                        prompts = [self._render(task, s, k, cfg, order=j).prompt for s in samples]
                        results[f"{name}@order{j}"] = self._direct(asker, prompts, chat[name])
            elif name == "cot":
                results[name] = self._chain(asker, zero, chat[name], opts)
            elif name == "sc":
                chains = [self._chain(asker, zero, chat[name], opts, opts.sc_temperature, r + 1) for r in range(opts.k)]
                results[name] = [_total(c[i] for c in chains) for i in range(len(samples))]
                extra[name] = [[c[i].text for c in chains] for i in range(len(samples))]
            else:
                results[name] = self._least_to_most(asker, zero, chat[name], opts)
        template = chat_template_id(engine.backend) if any(chat.values()) else None
        rows = []
        for i, s in enumerate(samples):
            target = str(s.target)
            entries: dict[str, Any] = {}
            for name, spent in results.items():
                base = name.split("@")[0]
                entry: dict[str, Any] = {"prompt_tokens": spent[i].prompt_tokens, "gen_tokens": spent[i].gen_tokens,
                                         "chat_template": chat[base]}
                if spent[i].reasoning:
                    entry.update(reasoning=spent[i].reasoning, capped=spent[i].capped)
                if name in extra:
                    answers = [read_answer(t, target) for t in extra[name][i]]
                    verdicts = [exact_match(a, target) for a in answers]
                    entry.update(answers=answers, answer=majority(answers), sample_acc=float(np.mean(verdicts)))
                    entry["pass"] = any(verdicts)
                else:
                    entry.update(generation=spent[i].text, answer=read_answer(spent[i].text, target))
                entry["correct"] = exact_match(entry["answer"], target) if entry["answer"] else False
                entries[name] = entry
            rows.append({"id": s.id, "target": target, "results": entries, "chat_template_id": template})
        return rows

    @staticmethod
    def _chat(name: str, opts: Any, cfg: ProbeConfig) -> bool:
        if opts.chat_template != "auto":
            return opts.chat_template == "on"
        return cfg.chat_model and not name.startswith("icl")

    @staticmethod
    def _render(task: Task, sample: Sample, shots: int, cfg: ProbeConfig, order: int = 0) -> Sample:
        builder = replace(task.builder, shots=shots)
        try:
            return builder.build(sample.id, sample.doc, fewshot_seed=f"strategies:{cfg.seed}:{sample.id}" if shots else None,
                                 shot_order_seed=f"order{order}:{cfg.seed}:{sample.id}" if order else None)
        except LlmassayError as exc:
            raise LlmassayError(f"strategies: {shots}-shot prompts for task '{task.name}': {exc}") from exc

    @staticmethod
    def _direct(asker: _Asker, prompts: list[str], chat: bool) -> list[Spent]:
        out = []
        for g in asker.ask([[("user", p)] for p in prompts], chat, asker.answer_tokens, asker.stop):
            spent = Spent(g.text)
            spent.add(g)
            out.append(spent)
        return out

    def _chain(self, asker: _Asker, zero: list[Sample], chat: bool, opts: Any, temperature: float = 0.0,
               repeat: int = 0) -> list[Spent]:
        """Chain of thought, then the answer read by a second, greedy prompt."""
        convs = [[("user", z.prompt + COT_CUE)] for z in zero]
        thoughts = asker.ask(convs, chat, opts.reasoning_tokens, REASONING_STOP, temperature, repeat)
        return self._conclude(asker, convs, thoughts, chat, [[t] for t in thoughts], repeat)

    def _least_to_most(self, asker: _Asker, zero: list[Sample], chat: bool, opts: Any) -> list[Spent]:
        convs = [[("user", z.prompt + LTM_DECOMPOSE)] for z in zero]
        plans = asker.ask(convs, chat, opts.reasoning_tokens, REASONING_STOP)
        convs = [c + [("assistant", p.text), ("user", LTM_SOLVE)] for c, p in zip(convs, plans)]
        solved = asker.ask(convs, chat, opts.reasoning_tokens, REASONING_STOP)
        return self._conclude(asker, convs, solved, chat, [[p, s] for p, s in zip(plans, solved)])

    @staticmethod
    def _conclude(asker: _Asker, convs: list[list[tuple[str, str]]], last: list[Generation], chat: bool,
                  spent_so_far: list[list[Generation]], repeat: int = 0) -> list[Spent]:
        final = [c + [("assistant", g.text), ("user", CHAT_ANSWER if chat else ANSWER_CUE)] for c, g in zip(convs, last)]
        answers = asker.ask(final, chat, asker.answer_tokens, asker.stop, repeat=repeat)
        out = []
        for gens, answer in zip(spent_so_far, answers):
            spent = Spent(answer.text)
            for g in gens:
                spent.add_step(g)
            spent.add(answer)
            out.append(spent)
        return out

    # -- corpus level ---------------------------------------------------------------------
    def analyse(self, task: Task, rows: list[Row], opts: Any, cfg: ProbeConfig) -> Analysis:
        metrics: dict[str, Metric] = {}
        if not rows:
            return Analysis(metrics, {})
        names = list(rows[0]["results"])
        base = np.array([r["results"][BASELINE]["correct"] for r in rows], dtype=bool)
        base_tokens = float(np.mean([_tokens(r["results"][BASELINE]) for r in rows]))
        table = []
        for name in names:
            correct = np.array([r["results"][name]["correct"] for r in rows], dtype=bool)
            spent = [_tokens(r["results"][name]) for r in rows]
            metrics[f"acc[{name}]"] = proportion(correct)
            metrics[f"tokens[{name}]"] = bootstrap_mean(spent, cfg.seed)
            metrics[f"prompt_tokens[{name}]"] = bootstrap_mean([r["results"][name]["prompt_tokens"] for r in rows], cfg.seed)
            metrics[f"gen_tokens[{name}]"] = bootstrap_mean([r["results"][name]["gen_tokens"] for r in rows], cfg.seed)
            entry: dict[str, Any] = {
                "strategy": name, "acc": float(correct.mean()), "acc_ci": [metrics[f"acc[{name}]"].ci_low,
                                                                         metrics[f"acc[{name}]"].ci_high],
                "tokens": metrics[f"tokens[{name}]"].value,
                "tokens_ci": [metrics[f"tokens[{name}]"].ci_low, metrics[f"tokens[{name}]"].ci_high],
                "cost_ratio": metrics[f"tokens[{name}]"].value / base_tokens if base_tokens else float("nan"),
                "prompt_tokens": metrics[f"prompt_tokens[{name}]"].value, "gen_tokens": metrics[f"gen_tokens[{name}]"].value,
                "chat_template": bool(rows[0]["results"][name]["chat_template"]), "n": len(rows),
            }
            steps = sum(len(r["results"][name].get("reasoning", ())) for r in rows)
            if steps:  # how often `reasoning_tokens` cut a step: a high share means the cap shapes the result
                entry["capped_share"] = sum(r["results"][name]["capped"] for r in rows) / steps
            if name != BASELINE:
                delta = bootstrap_mean((correct.astype(float) - base.astype(float)).tolist(), cfg.seed)
                metrics[f"delta_acc[{name}]"] = delta
                lost, gained = int((base & ~correct).sum()), int((~base & correct).sum())
                entry.update(delta=delta.value, delta_ci=[delta.ci_low, delta.ci_high], lost=lost, gained=gained,
                             mcnemar_p=mcnemar_exact(lost, gained))
            if name == "sc":
                metrics["pass_at_k"] = proportion([r["results"]["sc"]["pass"] for r in rows])
                metrics["sc_sample_acc"] = bootstrap_mean([r["results"]["sc"]["sample_acc"] for r in rows], cfg.seed)
                entry.update(k=opts.k, maj_at_k=entry["acc"], pass_at_k=metrics["pass_at_k"].value,
                             sample_acc=metrics["sc_sample_acc"].value)
            table.append(entry)
        tested = [e for e in table if "mcnemar_p" in e]
        for e, adjusted in zip(tested, holm([e["mcnemar_p"] for e in tested])):
            e["holm_p"] = adjusted
            e["verdict"] = verdict(e["delta"], e["mcnemar_p"], e["cost_ratio"], adjusted, len(tested))
        details: dict[str, Any] = {"strategies": table, "baseline": BASELINE,
                                   "chat_template_id": rows[0].get("chat_template_id")}
        family = [n for n in names if "@order" in n]
        if family:
            columns = [family[0].split("@")[0], *family]
            matrix = np.array([[r["results"][n]["correct"] for n in columns] for r in rows], dtype=float)
            spread = spread_with_null(matrix, columns, cfg.seed)
            metrics["order_spread"] = spread.metric
            flips = proportion((matrix.min(1) != matrix.max(1)).tolist())
            metrics["order_flip_rate"] = flips
            details["exemplar_order"] = {"variants": columns, "spread": spread.metric.value,
                                         "null_mean": spread.null.value, "p_value": spread.p_value,
                                         "flip_rate": flips.value, "flip_rate_ci": [flips.ci_low, flips.ci_high]}
        details["literature"] = (
            "self-consistency: +17.9 points on GSM8K for PaLM-540B (Wang et al. 2023); least-to-most: ≥ 99 % on SCAN "
            "length split vs 16 % for CoT (Zhou et al. 2023); CoT gains appear only at large scale (Wei et al. 2022): "
            "for 100M-scale models the expected finding is no significant gain at k× the cost"
        )
        return Analysis(metrics, details)

    def summary(self, task: Task, analysis: Analysis, opts: Any) -> SummaryLine | None:
        table = [e for e in analysis.details.get("strategies", []) if e["strategy"] != BASELINE]
        if not table:
            return None
        gains = [e for e in table if e["holm_p"] < ALPHA and e["delta"] > 0]
        if gains:
            best = max(gains, key=lambda e: e["delta"])
            return self.line(task, analysis, f"acc[{best['strategy']}]", f"{best['strategy']}: {best['verdict']}", "good")
        cheapest = min(table, key=lambda e: e["cost_ratio"])
        dearest = max(e["cost_ratio"] for e in table)
        verdict_text = (f"no strategy beats zero-shot significantly (Holm-adjusted p ≥ {ALPHA}) at {cheapest['cost_ratio']:.1f}–"
                        f"{dearest:.1f}× the tokens") + _could_have_seen(table)
        return self.line(task, analysis, f"acc[{BASELINE}]", verdict_text, "info")


def _could_have_seen(table: list[dict[str, Any]]) -> str:
    """What the paired items could have detected: the smallest gain each strategy's paired CI
    gives 80 % power to (design.detectable_from_interval), over the strategies."""
    mdes = [m for m in (detectable_from_interval(*e["delta_ci"]) for e in table if "delta_ci" in e) if m is not None]
    if not mdes:
        return "; the paired items all score alike, so the data cannot say what gain this n could have seen"
    span = f"{min(mdes):.2g}" if round(min(mdes), 2) == round(max(mdes), 2) else f"{min(mdes):.2g}–{max(mdes):.2g}"
    return f"; this n could have seen a gain of {span} in accuracy (80 % power), not a smaller one"


def verdict(delta: float, p: float, cost_ratio: float, holm_p: float | None = None, family: int = 1) -> str:
    """Plain words for one strategy against zero-shot: McNemar's exact test, significant
    when its Holm-adjusted p (over the `family` strategies tested) is below α = 0.05."""
    adjusted = p if holm_p is None else holm_p
    test = f"McNemar p = {p:.2g}" + (f", Holm-adjusted over {family}: {adjusted:.2g}" if family > 1 else "")
    if adjusted < ALPHA and delta > 0:
        return f"gain of {delta:+.0%} ({test}) at {cost_ratio:.1f}× the cost"
    if adjusted < ALPHA:
        return f"significant loss of {delta:+.0%} ({test}) at {cost_ratio:.1f}× the cost"
    return f"no significant gain at {cost_ratio:.1f}× the cost (Δ {delta:+.0%}, {test})"


def _tokens(entry: dict[str, Any]) -> int:
    return int(entry["prompt_tokens"]) + int(entry["gen_tokens"])


def _total(spent: Any) -> Spent:
    out = Spent()
    for s in spent:
        out.prompt_tokens += s.prompt_tokens
        out.gen_tokens += s.gen_tokens
        out.reasoning += s.reasoning
        out.capped += s.capped
    return out
