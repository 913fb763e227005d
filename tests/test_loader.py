import json
from pathlib import Path

import pytest

from llmassay.tasks.loader import TaskError, bundled_tasks, load_task


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_bundled_tasks_are_listed_with_their_sizes():
    assert set(bundled_tasks()) >= {"mmlu_sample", "arith_sample"}
    mmlu = load_task("mmlu_sample")
    assert len(mmlu.samples) == 281 and mmlu.output_type == "multiple_choice"
    assert mmlu.metrics == ["acc", "acc_norm", "acc_gen"]
    arith = load_task("arith_sample")
    assert len(arith.samples) == 200 and arith.output_type == "generate_until"
    assert arith.generation_kwargs == {"until": ["\n"], "max_gen_toks": 12}


def test_mmlu_prompt_is_lm_eval_format():
    sample = next(s for s in load_task("mmlu_sample").samples if s.id == "anatomy_0")
    assert sample.prompt == (
        "The following are multiple choice questions (with answers) about anatomy.\n\n"
        "Which of the following is the body cavity that contains the pituitary gland?\n"
        "A. Abdominal\nB. Cranial\nC. Pleural\nD. Spinal\nAnswer:"
    )
    assert sample.choices == ["A", "B", "C", "D"] and sample.target == 1


def test_fewshot_is_seeded_and_excludes_the_item_itself():
    a = load_task("arith_sample", seed=0)
    b = load_task("arith_sample", seed=0)
    c = load_task("arith_sample", seed=1)
    assert [s.prompt for s in a.samples] == [s.prompt for s in b.samples]
    assert [s.prompt for s in a.samples] != [s.prompt for s in c.samples]
    assert a.content_hash == b.content_hash != c.content_hash
    for s in a.samples[:50]:
        shots = s.prompt.split("\n\n")
        assert len(shots) == 4
        assert all(shot.split("\nAnswer:")[0] != shots[-1].split("\nAnswer:")[0] for shot in shots[:-1])
    zero = load_task("arith_sample", num_fewshot=0)
    assert zero.samples[0].prompt == "Question: Calculate -5 / 5.\nAnswer:"


def test_first_n_sampler_gives_every_item_the_first_shots_in_file_order(tmp_path):
    """lm-eval's `fewshot_config: {sampler: first_n}`: the first documents, minus the item
    itself, so the shot block is one prefix every prompt shares."""
    import yaml


    source = bundled_tasks()["arith_sample"]
    config = yaml.safe_load(source.read_text())
    config["dataset_kwargs"]["data_files"] = str(source.parent / config["dataset_kwargs"]["data_files"])
    config["fewshot_config"] = {"sampler": "first_n"}
    path = write(tmp_path / "arith_first_n.yaml", yaml.safe_dump(config))
    task, default = load_task(str(path)), load_task("arith_sample")
    inputs = [s.doc["input"] for s in task.samples]
    block = "".join(f"Question: {i}\nAnswer: {s.target}\n\n" for i, s in zip(inputs[:3], task.samples[:3]))
    assert all(s.prompt == block + f"Question: {s.doc['input']}\nAnswer:" for s in task.samples[3:])
    first = task.samples[0].prompt  # the item itself is left out: shots 2, 3, 4
    assert first.startswith(f"Question: {inputs[1]}\n") and f"Question: {inputs[3]}\n" in first
    assert first.count("Question:") == 4
    assert task.content_hash != default.content_hash
    assert task.rerender(task.samples[10], fewshot_seed="reseed:1").prompt != task.samples[10].prompt


def test_limit_keeps_the_first_items_and_the_hash_of_the_whole_task():
    task = load_task("mmlu_sample")
    limited = task.limited(5)
    assert [s.id for s in limited.samples] == [s.id for s in task.samples[:5]]
    assert limited.content_hash == task.content_hash


def test_plain_jsonl_multiple_choice_and_generation(tmp_path):
    mc = write(tmp_path / "mc.jsonl", '{"question": "2+2?", "choices": ["3", "4"], "answer": 1}\n\n'
               '{"question": "Sky?", "choices": ["blue", "green"], "answer": "blue"}\n')
    task = load_task(str(mc))
    assert task.output_type == "multiple_choice"
    assert [s.target for s in task.samples] == [1, 0]
    assert task.samples[0].prompt == "Question: 2+2?\nAnswer:"
    gen = write(tmp_path / "gen.jsonl", '{"input": "Say hi", "target": "hi"}\n')
    task = load_task(str(gen))
    assert task.output_type == "generate_until" and task.samples[0].target == "hi"


def test_csv_with_option_columns(tmp_path):
    path = write(tmp_path / "q.csv", 'question,A,B,C,D,answer\n"What, exactly?",w,x,y,z,C\n')
    task = load_task(str(path))
    assert task.samples[0].choices == ["w", "x", "y", "z"] and task.samples[0].target == 2


def test_yaml_task_with_relative_data_file_and_split_mapping(tmp_path):
    write(tmp_path / "d.jsonl", '{"id": "x1", "q": "Is fire hot?", "label": 0}\n{"id": "x2", "q": "Is ice hot?", "label": 1}\n')
    path = write(tmp_path / "t.yaml", (
        "task: yesno\ndataset_path: json\ndataset_kwargs:\n  data_files: {test: d.jsonl}\ntest_split: test\n"
        "output_type: multiple_choice\ndoc_to_text: '{{q}}\\nAnswer:'\ndoc_to_choice: ['yes', 'no']\n"
        "doc_to_target: label\nmetric_list:\n  - metric: acc\n"
    ))
    task = load_task(str(path))
    assert task.name == "yesno" and [s.id for s in task.samples] == ["x1", "x2"]
    assert task.samples[1].target == 1 and task.metrics == ["acc"]


BAD_YAML_CASES = [
    ("task: x\ndoc_to_text: [unclosed\n", r"t\.yaml:\d+: invalid YAML"),
    ("- a\n- b\n", r"t\.yaml:1: a task file must be a mapping"),
    ("task: x\noutput_type: essay\ndoc_to_text: a\ndoc_to_target: b\n", r"t\.yaml:2: field 'output_type'"),
    ("task: x\ndataset_path: json\ndataset_kwargs: {data_files: d.jsonl}\noutput_type: generate_until\ndoc_to_target: y\n",
     r"missing required field 'doc_to_text'"),
    ("task: x\ndataset_path: cais/mmlu\noutput_type: generate_until\ndoc_to_text: a\ndoc_to_target: b\n",
     r"t\.yaml:2: field 'dataset_path': 'cais/mmlu' has no local copy and "),
    ("task: x\ndataset_path: json\ndataset_kwargs: {data_files: d.jsonl}\noutput_type: generate_until\n"
     "doc_to_text: '{{nope}}'\ndoc_to_target: y\n", r"t\.yaml:5: field 'doc_to_text': 'nope' is undefined on .*d\.jsonl:1"),
    ("task: x\ndataset_path: json\ndataset_kwargs: {data_files: d.jsonl}\noutput_type: generate_until\n"
     "doc_to_text: \"{{ ''.__class__.__mro__[1].__subclasses__() }}\"\ndoc_to_target: y\n",
     r"t\.yaml:5: field 'doc_to_text': template blocked by the sandbox"),
    ("task: x\ndataset_path: json\ndataset_kwargs: {data_files: d.jsonl}\noutput_type: generate_until\n"
     "doc_to_text: '{{ x'\ndoc_to_target: y\n", r"t\.yaml:5: field 'doc_to_text': template syntax error"),
    ("task: x\ndataset_path: json\ndataset_kwargs: {data_files: missing.jsonl}\noutput_type: generate_until\n"
     "doc_to_text: a\ndoc_to_target: y\n", r"t\.yaml:3: field 'dataset_kwargs': data file 'missing.jsonl' not found"),
    ("task: x\nprocess_results: !function utils.process\n", r"t\.yaml:2: field 'process_results': '!function utils\.process' runs Python from .*; pass --trust-task-code"),
    ("task: x\ndataset_path: json\ndataset_kwargs: {data_files: d.jsonl}\noutput_type: multiple_choice\n"
     "doc_to_text: a\ndoc_to_choice: ['p', 'q']\ndoc_to_target: 7\n", r"field 'doc_to_target': 7 is not a valid choice index"),
    ("task: x\ndataset_path: json\ndataset_kwargs: {data_files: d.jsonl}\noutput_type: generate_until\n"
     "doc_to_text: a\ndoc_to_target: y\nnum_fewshot: -1\n", r"t\.yaml:7: field 'num_fewshot': must be a non-negative integer"),
    ("task: x\ndataset_path: json\ndataset_kwargs: {data_files: d.jsonl}\noutput_type: generate_until\n"
     "doc_to_text: a\ndoc_to_target: y\nmetric_list: [rouge]\n", r"field 'metric_list': metric 'rouge' is not supported"),
    ("task: x\ndataset_path: json\ndataset_kwargs: {data_files: d.jsonl}\noutput_type: generate_until\n"
     "doc_to_text: a\ndoc_to_target: y\nfewshot_config: {sampler: balanced}\n",
     r"t\.yaml:7: field 'fewshot_config': sampler 'balanced' is not one of default, first_n"),
]


@pytest.mark.parametrize("yaml_text,pattern", BAD_YAML_CASES)
def test_bad_task_files_get_one_line_errors_with_file_and_line(tmp_path, yaml_text, pattern):
    write(tmp_path / "d.jsonl", '{"y": "1"}\n')
    path = write(tmp_path / "t.yaml", yaml_text)
    with pytest.raises(TaskError, match=pattern) as info:
        load_task(str(path))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "content,pattern",
    [
        (b'{"input": "a", "target": "b"}\n{"input": "c", "target": \n', r"bad\.jsonl:2: invalid JSON"),
        (b'{"input": "a", "target": "b"}\n[1, 2]\n', r"bad\.jsonl:2: each line must be a JSON object"),
        (b'{"input": "a", "target": "b"}\n{"input": "\xff\xfe", "target": "b"}\n', r"bad\.jsonl:2: not valid UTF-8"),
        (b'{"id": 1, "input": "a", "target": "b"}\n{"id": 1, "input": "c", "target": "d"}\n',
         r"bad\.jsonl:2: duplicate id '1' \(first at .*bad\.jsonl:1\)"),
        (b'{"foo": 1}\n', r"bad\.jsonl:1: unknown columns \['foo'\]"),
        (b"", r"bad\.jsonl: no records"),
    ],
)
def test_bad_data_files_name_the_line(tmp_path, content, pattern):
    path = write(tmp_path / "bad.jsonl", content)
    with pytest.raises(TaskError, match=pattern):
        load_task(str(path))


def test_csv_row_with_wrong_field_count_names_the_line(tmp_path):
    path = write(tmp_path / "bad.csv", "input,target\na,b\nc,d,e\n")
    with pytest.raises(TaskError, match=r"bad\.csv:3: row has a different number of fields"):
        load_task(str(path))


def test_unknown_task_name_lists_the_bundled_ones():
    with pytest.raises(TaskError, match="not a bundled task .*mmlu_sample"):
        load_task("no_such_task")


def test_sandbox_does_not_execute_code(tmp_path):
    marker = tmp_path / "pwned"
    write(tmp_path / "d.jsonl", json.dumps({"y": "1"}) + "\n")
    template = "{{ cycler.__init__.__globals__.os.system('touch " + str(marker) + "') }}"
    path = write(tmp_path / "t.yaml", "task: x\ndataset_path: json\ndataset_kwargs: {data_files: d.jsonl}\n"
                 f"output_type: generate_until\ndoc_to_text: \"{template}\"\ndoc_to_target: y\n")
    with pytest.raises(TaskError):
        load_task(str(path))
    assert not marker.exists()
