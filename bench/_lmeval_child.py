"""Child process for the bench scripts: lm-evaluation-harness 0.4.13 `hf` on one task.

Loads the model (timed), runs the first N documents through a temporary copy of our task
YAML (argv[4], default the bundled mmlu_sample), and writes timings, metrics and
per-document answers as JSON to argv[3]: log-likelihoods per choice for a multiple-choice
task, the prompt and generated text for a generate_until task.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

start = time.perf_counter()
model_dir, limit, out_path = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])

import lm_eval  # noqa: E402
import yaml  # noqa: E402
from lm_eval.models.huggingface import HFLM  # noqa: E402
from lm_eval.tasks import TaskManager  # noqa: E402

from llmassay.tasks.loader import bundled_tasks  # noqa: E402

source = Path(sys.argv[4]) if len(sys.argv) > 4 else bundled_tasks()["mmlu_sample"]
config = yaml.safe_load(source.read_text())
name = config["task"] = f"{config['task']}_lmeval"
config["dataset_kwargs"]["data_files"] = str(source.parent / config["dataset_kwargs"]["data_files"])
config["metric_list"] = [m for m in config["metric_list"] if m["metric"] != "acc_gen"]  # lm-eval: no such metric
text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
load_start = time.perf_counter()
lm = HFLM(pretrained=model_dir, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf", dtype="float32", batch_size=8, device="cpu")
load_s = time.perf_counter() - load_start
with tempfile.TemporaryDirectory() as include:
    Path(include, f"{name}.yaml").write_text(text)
    score_start = time.perf_counter()
    out = lm_eval.simple_evaluate(
        model=lm, tasks=[name], task_manager=TaskManager(include_path=include), limit=limit, log_samples=True,
    )
    score_s = time.perf_counter() - score_start
samples = out["samples"][name]
report = {
    "load_s": load_s, "score_s": score_s, "in_process_s": time.perf_counter() - start,
    "metrics": {k.split(",")[0]: v for k, v in out["results"][name].items() if k.endswith(",none")},
}
if config["output_type"] == "generate_until":
    report["prompts"] = {s["doc"]["id"]: s["arguments"][0][0] for s in samples}
    report["generations"] = {s["doc"]["id"]: s["resps"][0][0] for s in samples}
else:
    report["loglikelihoods"] = {s["doc"]["id"]: [float(r[0]) for r in s["filtered_resps"]] for s in samples}
out_path.write_text(json.dumps(report))
