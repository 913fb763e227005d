"""Run lm-eval 0.4.13's own evaluator on the test configs and store what it produced.

Writes tests/data/lm_eval/reference.json: per task and shot count, the prompt lm-eval
built for every document (`arguments`' context), its generations, and its metrics, with
the scripted model of scripts/lm_eval_fake.py answering. tests/test_lm_eval_compat.py
checks llmassay against this file; rerun this script when the configs or data change.

Needs lm-eval in its own environment (it pulls datasets, pyarrow, pandas, evaluate):
    python -m venv /tmp/lmeval-venv && /tmp/lmeval-venv/bin/pip install lm-eval==0.4.13
    /tmp/lmeval-venv/bin/python scripts/lm_eval_reference.py
Hub datasets are replaced by the local copies under tests/data/lm_eval/data/ (the layout
llmassay's --data-dir reads), so nothing is downloaded.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import datasets
import lm_eval
from lm_eval.api.model import LM
from lm_eval.api.task import ConfigurableTask
from lm_eval.loggers import EvaluationTracker
from lm_eval.tasks import TaskManager

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window  # noqa: E402
from lm_eval_fake import answer, greedy, rolling_tokens, score, score_tokens  # noqa: E402

ROOT = HERE.parent / "tests" / "data" / "lm_eval"
# (task, num_fewshot): None keeps the config's own num_fewshot.
RUNS = [
    ("arc_easy", 0), ("arc_easy", 3), ("arc_challenge", 2), ("piqa", 2), ("boolq", 1), ("sciq", 0),
    ("openbookqa", 2), ("hellaswag", 2), ("mmlu_anatomy", 5), ("mmlu_astronomy", 0), ("rte", 1), ("cola", 1), ("winogrande", 0), ("winogrande", 2), ("lambada_openai", 0), ("galician_bench_flores_en-gl", 0), ("galician_bench_flores_en-gl", 2),
    ("agieval_math", 0), ("agieval_aqua_rat", 0),
    ("nq_open", 2), ("triviaqa", 0), ("gsm8k", None),
    ("wikitext", 0), ("pile_10k", 0), ("arc_easy_mi", 0), ("arc_easy_mi", 2),
    ("mmlu_flan_cot_zeroshot_anatomy", 0), ("afriqa_hau_prompt_2", 0), ("afriqa_hau_prompt_2", 2),
    ("gsm8k_cot", None), ("gsm8k_cot_self_consistency", 2), ("arc_challenge_llama", 0), ("truthfulqa_mc2", 0),
]
# Tasks whose files, as lm-eval's EvaluationTracker writes them (`--output_path --log_samples`),
# are stored: the results entry (stderrs included) and the sample lines less `doc` (its hash
# stays) — the shapes `--lm-eval-results` must write, one task per output type.
FILES = ["lambada_openai", "wikitext", "pile_10k", "truthfulqa_mc2", "arc_easy", "gsm8k", "galician_bench_flores_en-gl",
         "afriqa_hau_prompt_2"]
GROUPS = ["mmlu_stem", "science_mix"]  # group configs: their aggregate_metric_list


def windows(tokens: list[int], prefix: int, max_length: int) -> list:
    return [list(map(list, make_disjoint_window(w))) for w in get_rolling_token_windows(tokens, prefix, max_length, 1)]


def local_download(self: ConfigurableTask, dataset_kwargs=None, **kwargs) -> None:
    folder = ROOT / "data" / self.DATASET_PATH / (self.DATASET_NAME or "default")
    files = {p.stem: str(p) for p in sorted(folder.glob("*.jsonl"))}
    self.dataset = datasets.load_dataset("json", data_files=files)


class FakeLM(LM):
    def loglikelihood(self, requests):
        return [(score(*r.args[:2]), greedy(*r.args[:2])) for r in requests]

    def loglikelihood_rolling(self, requests):
        return [sum(score_tokens(c, p) for c, p in windows(*rolling_tokens(r.args[0]))) for r in requests]

    def generate_until(self, requests):
        """A request with `repeats` comes `repeats` times in a row (lm-eval's evaluator clones
        it): the k-th copy gets the k-th sampled answer, as llmassay's seed + k."""
        seen: dict[tuple[int, str], int] = {}
        out = []
        for r in requests:
            key = (r.doc_id, r.args[0])
            repeat = seen.get(key, 0) if r.repeats > 1 else 0
            seen[key] = repeat + 1
            out.append(answer(r.args[0], repeat))
        return out


def written_files(manager: TaskManager, task: str) -> dict:
    """Run `task` zero-shot and read back what lm-eval writes to disk for it."""
    with tempfile.TemporaryDirectory() as tmp:
        tracker = EvaluationTracker(output_path=tmp)
        result = lm_eval.simple_evaluate(model=FakeLM(), tasks=[task], num_fewshot=0, task_manager=manager,
                                         log_samples=True, bootstrap_iters=100,  # > 0: which stderrs it writes
                                         evaluation_tracker=tracker)
        samples = result.pop("samples")
        tracker.save_results_aggregated(results=result, samples=samples)
        tracker.save_results_samples(task_name=task, samples=samples[task])
        [results_file] = Path(tmp).glob("**/results_*.json")
        [samples_file] = Path(tmp).glob(f"**/samples_{task}_*.jsonl")
        lines = [json.loads(line) for line in samples_file.read_text(encoding="utf-8").splitlines()]
        entry = json.loads(results_file.read_text(encoding="utf-8"))["results"][task]
    print(task, entry)
    return {"results": entry, "samples": [{k: v for k, v in line.items() if k != "doc"} for line in lines]}


def main() -> None:
    ConfigurableTask.download = local_download
    manager = TaskManager(include_path=str(ROOT / "tasks"), include_defaults=False)
    out: dict[str, dict] = {"lm_eval_version": lm_eval.__version__ if hasattr(lm_eval, "__version__") else "0.4.13",
                            "runs": {}}
    for task, shots in RUNS:
        result = lm_eval.simple_evaluate(model=FakeLM(), tasks=[task], num_fewshot=shots, task_manager=manager,
                                         log_samples=True, bootstrap_iters=0)
        logged = sorted(result["samples"][task], key=lambda s: s["doc_id"])  # one line per doc and filter
        samples = [s for i, s in enumerate(logged) if i == 0 or logged[i - 1]["doc_id"] != s["doc_id"]]
        filtered = {}
        for s in logged:
            filtered.setdefault(s["doc_id"], []).append(s["filtered_resps"][0])
        metrics = {k: v for k, v in result["results"][task].items() if k != "alias" and "_stderr" not in k}
        out["runs"][f"{task}@{shots}"] = {
            "task": task,
            "num_fewshot": shots,
            "n_shot": result["n-shot"][task],
            "prompts": [s["arguments"][0][0] for s in samples],
            "contexts": [[a[0] for a in s["arguments"]] for s in samples],
            "continuations": [[a[1] for a in s["arguments"] if len(a) > 1] for s in samples],
            "resps": [s["resps"] for s in samples],
            "filters": list(dict.fromkeys(s["filter"] for s in logged)),
            "filtered_resps": [filtered[s["doc_id"]] for s in samples],
            "metrics": metrics,
        }
        print(task, shots, metrics)
    out["groups"] = {}
    for group in GROUPS:
        result = lm_eval.simple_evaluate(model=FakeLM(), tasks=[group], num_fewshot=0, task_manager=manager,
                                         bootstrap_iters=1)  # > 0: stderrs (acc's is analytic, no resampling)
        out["groups"][group] = {name: {k: v for k, v in values.items() if "," in k}
                                for name, values in result["results"].items()}
        print(group, out["groups"][group][group])
    out["files"] = {task: written_files(manager, task) for task in FILES}
    # lm-eval's own rolling windows for tokens 0..n-1, prefix -1 (engine/rolling.py must agree)
    out["rolling_windows"] = {f"{n},{m}": windows(list(range(n)), -1, m) for n in (0, 1, 5, 8, 9, 17, 30) for m in (1, 2, 8)}
    (ROOT / "reference.json").write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
