"""Watermark: is a green-list watermark detectable on this model's text, at what cost, and
after which edits?

Per prompt the model writes four texts — plain and watermarked, greedy and sampled — and
each is tested from its token ids alone (the detector re-tokenises the text, as a third
party would). Watermarked texts give the true-positive rate at z > `z_threshold`, plain
ones the false-positive rate; prefixes of 25 … T tokens give z against T beside the
predicted curve z ≈ √T (g − γ)/√(γ(1 − γ)). The sampled watermarked text is then attacked
(random substitutions from human text, deletion, paraphrase by the model itself, pasting
into human text) and tested again. Quality: perplexity of the sampled texts under the
unwatermarked model and, on short-answer tasks with stop strings (arith_sample), exact
match with and without the watermark. After the rows: the null from human text under
`null_keys` random keys, and zero-shot detectors' AUROC (likelihood, log-rank,
Fast-DetectGPT's analytic curvature) beside the watermark z's on the same texts.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from llmassay.metrics import bootstrap_mean, exact_match, proportion
from llmassay.probes._options import build_options, option
from llmassay.probes.base import Analysis, Preset, Probe, ProbeConfig, Row, SampleMetric, SummaryLine
from llmassay.types import LlmassayError, LoglikelihoodRequest, Sample
from llmassay.watermark import WatermarkConfig, detect_ids, predicted_z, tokens_needed, z_threshold
from llmassay.watermark.attacks import delete, mix, substitute
from llmassay.watermark.generate import generation_request
from llmassay.watermark.keys import DEFAULT_KEY, warn_if_default
from llmassay.watermark.null import human_text, null_zscores
from llmassay.watermark.scheme import SCHEMES
from llmassay.watermark.zeroshot import BASELINES, DETECTORS, auroc_metric, human_spans, zero_shot_scores

if TYPE_CHECKING:
    from llmassay.engine.engine import Engine
    from llmassay.tasks.loader import Task

ATTACKS = ("sub10", "sub20", "sub30", "delete20", "paraphrase", "mix25", "mix50", "mix75")
CONDITIONS = ("greedy", "sampled")
PREFIXES = (25, 50, 100, 200, 400)
TPR_GOOD, TPR_WARN = 0.95, 0.80  # summary-card thresholds on the sampled TPR (Kirchenbauer: ~98 % at T = 200)


def _nonempty(value: str) -> None:
    if not value:
        raise LlmassayError("the key must not be empty")


@dataclass(frozen=True)
class WatermarkOptions:
    key: str = option(DEFAULT_KEY, "watermark key (the default is public: anyone can detect or forge it)", check=_nonempty)
    gamma: float = option(0.25, "green share of the vocabulary", minimum=0.01, maximum=0.99)
    delta: float = option(2.0, "logit bias added to green tokens", minimum=0.0)
    scheme: str = option("selfhash", "seeding scheme: prev or selfhash", choices=SCHEMES)
    h: int = option(4, "selfhash window in tokens, the token included", minimum=2, maximum=16)
    max_tokens: int = option(200, "tokens per generation (T)", minimum=8)
    temperature: float = option(0.7, "temperature of the sampled generations", minimum=0.01)
    z_threshold: float = option(4.0, "z above which a text counts as watermarked", minimum=0.0)
    attacks: tuple[str, ...] = option(ATTACKS, "edits to survive: " + ", ".join(ATTACKS), choices=ATTACKS)
    null_keys: int = option(1000, "random keys for the null calibration on human text (0: skip)", minimum=0)
    zero_shot: bool = option(True, "also measure zero-shot detectors' AUROC (model vs human text) beside the watermark's")
    baseline: tuple[str, ...] = option(BASELINES, "zero-shot detectors: " + ", ".join(BASELINES)
                                       + " (logrank, fastdetectgpt: llamacpp/ or hf/)", choices=BASELINES)
    prompt_format: str = option("chat", "chat (the model's chat template, when it has one) or raw (few-shot prompts as text)",
                                choices=("chat", "raw"))

    def config(self) -> WatermarkConfig:
        return WatermarkConfig(self.key, self.gamma, self.delta, self.scheme, self.h)

    @staticmethod
    def from_config(cfg: ProbeConfig) -> WatermarkOptions:
        return build_options("watermark", WatermarkOptions, cfg.options_dict())


def _family(field: str, binary: bool, help: str) -> SampleMetric:
    return SampleMetric(lambda row: row[field], help, family=True, binary=binary)


class WatermarkProbe(Probe):
    name = "watermark"
    description = "green-list watermark: TPR/FPR at z > 4, z vs T, quality cost, robustness to edits, null, zero-shot baselines"
    challenge = "generated-text detection"
    task_types = ("generate_until",)
    Options = WatermarkOptions
    schema_version = 1
    sample_metrics = {
        "detected": _family("detected", True, "the watermarked text's z exceeds the threshold, per decoding"),
        "false_positive": _family("false_positive", True, "the plain text's z exceeds the threshold, per decoding"),
        "detected_after": _family("detected_after", True, "the sampled watermarked text is still detected after each edit"),
        "z": _family("z", False, "z of each text (distinct context-token pairs once)"),
        "perplexity": _family("perplexity", False, "perplexity of the sampled text under the unwatermarked model"),
        "exact_match": _family("exact_match", True, "short answer right, plain and watermarked (tasks with stop strings)"),
    }
    presets = {
        "quick": Preset(("prose_continue",), limit=5, options=(("max_tokens", 60), ("null_keys", 200),
                                                            ("attacks", "sub20,delete20"), ("zero_shot", False))),
        "full": Preset(("prose_continue",), limit=100),
    }

    def __init__(self) -> None:
        self._tokens: dict[int, tuple[list[int], list[int]]] = {}  # id(backend) → (specials prefix, human ids)
        self._warned = False

    def evaluate(self, task: Task, samples: list[Sample], engine: Engine, opts: Any, cfg: ProbeConfig) -> list[Row]:
        wm = opts.config()
        if not self._warned:  # evaluate runs once per chunk; one line per run
            warn_if_default(opts.key)
            self._warned = True
        if opts.prompt_format == "raw":
            cfg = dataclasses.replace(cfg, chat_model=False)
        texts = self._generate(samples, engine, opts, wm, cfg)
        ids = {key: [self._ids(engine, t) for t in column] for key, column in texts.items()}
        marked = ids["marked_sampled"]
        paraphrases = self._paraphrases(texts["marked_sampled"], engine, opts, cfg) if "paraphrase" in opts.attacks else None
        ppl = self._perplexities(samples, texts, engine)
        answers = self._answers(task, samples, engine, wm, cfg)
        human = self._human_ids(engine)
        rows = []
        for i, s in enumerate(samples):
            z = {key: detect_ids(column[i], wm) for key, column in ids.items()}
            seed = cfg.seed * 1_000_003 + zlib.crc32(s.id.encode())
            attacked = _attack(marked[i], human, opts.attacks, seed)
            if paraphrases is not None:
                attacked["paraphrase"] = self._ids(engine, paraphrases[i])
            z_attacked = {name: detect_ids(a, wm).z for name, a in attacked.items()}
            row: Row = {
                "id": s.id,
                "texts": {key: column[i] for key, column in texts.items()},
                "z": {key: d.z for key, d in z.items()},
                "z_all": {key: d.z_all for key, d in z.items()},
                "green_fraction": {key: d.green_fraction for key, d in z.items()},
                "n_scored": {key: d.n_scored for key, d in z.items()},
                "z_prefix": {c: _prefix_z(ids[f"marked_{c}"][i], wm) for c in CONDITIONS},
                "detected": {c: z[f"marked_{c}"].z > opts.z_threshold for c in CONDITIONS},
                "false_positive": {c: z[f"plain_{c}"].z > opts.z_threshold for c in CONDITIONS},
                "z_attacked": z_attacked,
                "detected_after": {name: v > opts.z_threshold for name, v in z_attacked.items()},
                "perplexity": ppl[i],
                "exact_match": answers[i] if answers else {},
            }
            if paraphrases is not None:
                row["texts"]["paraphrase"] = paraphrases[i]
            rows.append(row)
        return rows

    # -- requests ---------------------------------------------------------------------------
    _request = staticmethod(generation_request)

    def _generate(self, samples: list[Sample], engine: Engine, opts: Any, wm: WatermarkConfig, cfg: ProbeConfig) -> dict[str, list[str]]:
        keys, reqs = [], []
        for marked in (False, True):
            for c in CONDITIONS:
                temperature = opts.temperature if c == "sampled" else 0.0
                keys.append(f"{'marked' if marked else 'plain'}_{c}")
                reqs += [
                    self._request(s.prompt, cfg.chat_model, max_tokens=opts.max_tokens, temperature=temperature,
                                  seed=cfg.seed, watermark=wm.spec() if marked else None)
                    for s in samples
                ]
        out = [g.text for g in engine.generate(reqs)]
        n = len(samples)
        return {key: out[k * n : (k + 1) * n] for k, key in enumerate(keys)}

    def _paraphrases(self, texts: list[str], engine: Engine, opts: Any, cfg: ProbeConfig) -> list[str]:
        """The model rewrites its own watermarked text, unwatermarked (the paraphrase attack)."""
        reqs = [
            self._request(f"Paraphrase the following text in your own words.\n\n{t}" if cfg.chat_model
                          else f"Original text: {t}\n\nThe same text in other words:", cfg.chat_model,
                          max_tokens=opts.max_tokens + opts.max_tokens // 4, temperature=opts.temperature, seed=cfg.seed)
            for t in texts
        ]
        return [g.text for g in engine.generate(reqs)]

    @staticmethod
    def _perplexities(samples: list[Sample], texts: dict[str, list[str]], engine: Engine) -> list[dict[str, float | None]]:
        """Perplexity of each sampled text given its prompt, under the model without the bias."""
        pairs = [(s.prompt, texts[f"{kind}_sampled"][i]) for kind in ("plain", "marked") for i, s in enumerate(samples)]
        asked = [LoglikelihoodRequest(p + "\n", t) for p, t in pairs if t.strip()]
        scores = iter(engine.loglikelihood(asked))
        values = []
        for _, t in pairs:
            r = next(scores) if t.strip() else None
            values.append(math.exp(-r.logprob / r.n_tokens) if r is not None and r.n_tokens else None)
        n = len(samples)
        return [{"plain": values[i], "marked": values[n + i]} for i in range(n)]

    def _answers(self, task: Task, samples: list[Sample], engine: Engine, wm: WatermarkConfig,
                 cfg: ProbeConfig) -> list[dict[str, bool]] | None:
        """Exact match of the task's own short greedy answer, plain and watermarked (only for
        tasks whose answers end at stop strings, such as arith_sample)."""
        kwargs = task.generation_kwargs
        if not kwargs.get("until") or "exact_match" not in task.metrics:
            return None
        common = dict(max_tokens=int(kwargs.get("max_gen_toks", 32)), stop=tuple(kwargs["until"]), seed=cfg.seed)
        reqs = [self._request(s.prompt, cfg.chat_model, watermark=w, **common)
                for w in (None, wm.spec()) for s in samples]
        out = engine.generate(reqs)
        n = len(samples)
        return [{"plain": exact_match(out[i].text, str(s.target)), "marked": exact_match(out[n + i].text, str(s.target))}
                for i, s in enumerate(samples)]

    # -- tokens -------------------------------------------------------------------------
    def _cached(self, engine: Engine) -> tuple[list[int], list[int]]:
        key = id(engine.backend)
        if key not in self._tokens:
            prefix = list(engine.backend.tokenize(""))  # what tokenize adds to every text (BOS)
            human = list(engine.backend.tokenize(human_text()))[len(prefix) :]
            self._tokens[key] = (prefix, human)
        return self._tokens[key]

    def _ids(self, engine: Engine, text: str) -> list[int]:
        """A text's ids as a detector sees them: re-tokenised, without the specials tokenize adds."""
        prefix = self._cached(engine)[0]
        ids = list(engine.backend.tokenize(text))
        return ids[len(prefix) :] if ids[: len(prefix)] == prefix else ids

    def _human_ids(self, engine: Engine) -> list[int]:
        return self._cached(engine)[1]

    # -- corpus level -------------------------------------------------------------------
    def analyse(self, task: Task, rows: list[Row], opts: Any, cfg: ProbeConfig) -> Analysis:
        metrics = {}
        for c in CONDITIONS:
            metrics[f"tpr[{c}]"] = proportion([r["detected"][c] for r in rows])
            metrics[f"fpr[{c}]"] = proportion([r["false_positive"][c] for r in rows])
            metrics[f"z_marked[{c}]"] = bootstrap_mean([r["z"][f"marked_{c}"] for r in rows], seed=cfg.seed)
            metrics[f"green_fraction[{c}]"] = bootstrap_mean([r["green_fraction"][f"marked_{c}"] for r in rows], seed=cfg.seed)
        for name in opts.attacks:
            metrics[f"tpr_after[{name}]"] = proportion([r["detected_after"][name] for r in rows if name in r["detected_after"]])
        for kind in ("plain", "marked"):
            metrics[f"perplexity[{kind}]"] = bootstrap_mean([v for r in rows if (v := r["perplexity"][kind]) is not None], seed=cfg.seed)
        both = [r["perplexity"] for r in rows if None not in r["perplexity"].values()]
        metrics["perplexity_ratio"] = bootstrap_mean([p["marked"] / p["plain"] for p in both], seed=cfg.seed)
        answered = [r["exact_match"] for r in rows if r["exact_match"]]
        if answered:
            metrics["exact_match[plain]"] = proportion([a["plain"] for a in answered])
            metrics["exact_match[marked]"] = proportion([a["marked"] for a in answered])
            metrics["exact_match_change"] = bootstrap_mean([float(a["marked"]) - float(a["plain"]) for a in answered], seed=cfg.seed)
        return Analysis(metrics, {"z_vs_tokens": _z_vs_tokens(rows, opts), "thresholds": _thresholds(rows, opts)})

    def after_rows(self, task: Task, rows: list[Row], engine: Engine, opts: Any, cfg: ProbeConfig) -> dict[str, Any]:
        details: dict[str, Any] = {}
        human = self._human_ids(engine)
        if opts.null_keys:
            try:
                cal = null_zscores(human, opts.config(), n_keys=opts.null_keys, window=opts.max_tokens, seed=cfg.seed)
            except ValueError as exc:
                raise LlmassayError(f"watermark: null calibration: {exc}") from None
            details["null"] = cal.summary(opts.z_threshold)
        if opts.zero_shot and rows:
            details["zero_shot"] = self._zero_shot(rows, engine, opts, cfg)
        return details

    def _zero_shot(self, rows: list[Row], engine: Engine, opts: Any, cfg: ProbeConfig) -> dict[str, Any]:
        """Each zero-shot detector, and the watermark's z beside them, on the same texts: the
        sampled texts (plain, then watermarked) against human spans as long as the plain ones."""
        kept = [r for r in rows if r["texts"]["plain_sampled"].strip() and r["texts"]["marked_sampled"].strip()]
        model = {kind: [r["texts"][f"{kind}_sampled"] for r in kept] for kind in ("plain", "marked")}
        human = human_spans(human_text(), [len(t) for t in model["plain"]], seed=cfg.seed)
        texts = [" " + t.strip() for t in model["plain"] + model["marked"] + human]
        # After the generations, a backend without distributions (a server, the Ray executor)
        # skips the detectors that need them rather than failing the run.
        can = callable(getattr(engine.backend, "token_stats", None))
        detectors = [d for d in opts.baseline if can or d == "likelihood"]
        skipped = {d: f"{engine.backend.name} gives no per-token distribution statistics"
                   for d in opts.baseline if d not in detectors}
        scores = zero_shot_scores(engine, texts, detectors)
        wm = opts.config()
        scores["watermark_z"] = [r["z"][f"{kind}_sampled"] for kind in ("plain", "marked") for r in kept]
        scores["watermark_z"] += [detect_ids(self._ids(engine, t), wm).z for t in human]
        n = len(kept)
        auroc = {
            name: {kind: auroc_metric(values[k * n : (k + 1) * n], values[2 * n :], seed=cfg.seed).as_dict()
                   for k, kind in enumerate(("plain", "marked"))}
            for name, values in scores.items()
        }
        described = {name: DETECTORS[name][1] for name in detectors}
        described["watermark_z"] = f"green-list z under the key ({opts.scheme}, gamma {opts.gamma:g})"
        return {"detectors": described, "auroc": auroc, "skipped": skipped,
                "human_text": "News from Nowhere (William Morris, 1890; public domain)",
                "n_model": n, "n_human": len(human)}

    def summary(self, task: Task, analysis: Analysis, opts: Any) -> SummaryLine | None:
        m = analysis.metrics.get("tpr[sampled]")
        if m is None:
            return None
        level = "good" if m.value >= TPR_GOOD else "warn" if m.value >= TPR_WARN else "bad"
        return self.line(task, analysis, "tpr[sampled]",
                         f"{m.value:.0%} of sampled watermarked texts reach z > {opts.z_threshold:g} at T = {opts.max_tokens}", level)


def _attack(ids: list[int], human: list[int], attacks: tuple[str, ...], seed: int) -> dict[str, list[int]]:
    pool = human or [0]
    out: dict[str, list[int]] = {}
    for name in attacks:
        if name.startswith("sub"):
            # replacements drawn from human text's tokens, so they look like real words
            picks = substitute(ids, int(name[3:]) / 100, len(pool), seed)
            out[name] = [t if t == o else pool[t] for t, o in zip(picks, ids)]
        elif name.startswith("delete"):
            out[name] = delete(ids, int(name[6:]) / 100, seed)
        elif name.startswith("mix"):
            out[name] = mix(ids, human, int(name[3:]) / 100, seed)
    return out


def _prefix_z(ids: list[int], wm: WatermarkConfig) -> dict[str, float]:
    """z of the first T scored tokens, for each T the text reaches."""
    return {str(t): detect_ids(ids[: t + wm.width], wm).z for t in PREFIXES if len(ids) >= t + wm.width}


def _z_vs_tokens(rows: list[Row], opts: Any) -> list[dict[str, Any]]:
    """Measured mean z at T tokens beside the prediction from the mean green fraction."""
    table = []
    for c in CONDITIONS:
        g = float(np.mean([r["green_fraction"][f"marked_{c}"] for r in rows])) if rows else float("nan")
        for t in PREFIXES:
            zs = [r["z_prefix"][c][str(t)] for r in rows if str(t) in r["z_prefix"][c]]
            if not zs:
                continue
            m = bootstrap_mean(zs)
            table.append({"decoding": c, "tokens": t, "z": m.as_dict(), "predicted_z": predicted_z(g, t, opts.gamma),
                          "tpr": proportion([z > opts.z_threshold for z in zs]).as_dict()})
        table.append({"decoding": c, "tokens_for_z": tokens_needed(g, opts.gamma, opts.z_threshold), "green_fraction": g})
    return table


def _thresholds(rows: list[Row], opts: Any) -> dict[str, float]:
    """z a text of each length must reach (z >= it) for FPR 1e-3 (exact binomial), beside the fixed threshold."""
    return {str(n): z_threshold(n, opts.gamma, 1e-3) for n in (25, 50, 100, 200, 400)}
