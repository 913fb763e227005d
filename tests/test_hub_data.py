"""lm-eval task files with a hub `dataset_path` (issue #38 item 3): a local copy under
--data-dir first (as before), else `datasets.load_dataset`, lm-eval's own loader, with its
cache and offline flags. A dataset folder on disk stands in for the hub: load_dataset reads
it through the same call a hub name takes. Without the `datasets` package the task fails in
one line naming what to install.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from llmassay.tasks.loader import TaskError, load_task

ROWS = {
    "train": ['{"id": "s1", "q": "Is snow cold?", "label": 0}'],
    "test": ['{"id": "x1", "q": "Is fire hot?", "label": 0}', '{"id": "x2", "q": "Is ice hot?", "label": 1}'],
}
YAML = ("task: yesno\ndataset_path: {path}\ntest_split: test\nfewshot_split: train\nnum_fewshot: 1\n"
        "output_type: multiple_choice\ndoc_to_text: \"{{{{q}}}}\\nAnswer:\"\ndoc_to_choice: ['yes', 'no']\n"
        "doc_to_target: label\n")


def dataset_folder(root: Path) -> Path:
    """A dataset as the hub holds one: a folder of split files that load_dataset reads."""
    root.mkdir(parents=True, exist_ok=True)
    for split, rows in ROWS.items():
        (root / f"{split}.jsonl").write_text("\n".join(rows) + "\n")
    return root


def task_file(tmp_path: Path, dataset_path: str, extra: str = "") -> Path:
    path = tmp_path / "t.yaml"
    path.write_text(YAML.format(path=dataset_path) + extra)
    return path


@pytest.fixture
def no_datasets(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # `import datasets` fails, as when not installed


@pytest.fixture
def datasets_here(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets-cache")  # not ~/.cache
    return datasets


def test_without_datasets_a_hub_dataset_path_is_one_line_naming_what_to_install(tmp_path, no_datasets):
    with pytest.raises(TaskError) as err:
        load_task(str(task_file(tmp_path, "llmassay-test/yesno")), data_dir=tmp_path / "mirror")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / 't.yaml'}:2: field 'dataset_path': 'llmassay-test/yesno' has no local "
                              "copy and reading it from the hub needs the 'datasets' package "
                              "(pip install 'llmassay[lmeval]'); or use 'json' or 'csv'")
    assert str(tmp_path / "mirror" / "llmassay-test/yesno" / "default" / "test.jsonl") in message


def test_a_local_copy_under_data_dir_needs_no_datasets_package(tmp_path, no_datasets):
    mirror = dataset_folder(tmp_path / "mirror" / "llmassay-test" / "yesno" / "default")
    task = load_task(str(task_file(tmp_path, "llmassay-test/yesno")), data_dir=tmp_path / "mirror")
    assert [s.id for s in task.samples] == ["x1", "x2"] and mirror.is_dir()
    assert task.samples[0].prompt == "Is snow cold?\nAnswer: yes\n\nIs fire hot?\nAnswer:"


def test_a_dataset_path_goes_through_datasets_load_dataset_like_a_local_copy(tmp_path, datasets_here):
    """The folder is read by `datasets.load_dataset(path, name, split=...)`, the call a hub
    name takes; the task is the same one the --data-dir copy of the same rows gives."""
    hub = load_task(str(task_file(tmp_path, str(dataset_folder(tmp_path / "hub-folder")))))
    dataset_folder(tmp_path / "mirror" / "llmassay-test" / "yesno" / "default")
    copy = load_task(str(task_file(tmp_path / "mirror", "llmassay-test/yesno")), data_dir=tmp_path / "mirror")
    assert [s.id for s in hub.samples] == ["x1", "x2"] and hub.samples[1].target == 1
    assert [s.prompt for s in hub.samples] == [s.prompt for s in copy.samples]
    assert hub.content_hash == copy.content_hash
    assert "Is snow cold?" in hub.samples[0].prompt  # the few-shot split came from the hub too


def test_an_unknown_split_names_the_yaml_key(tmp_path, datasets_here):
    folder = dataset_folder(tmp_path / "hub-folder")
    path = task_file(tmp_path, str(folder), "validation_split: validation\n")
    path.write_text(path.read_text().replace("test_split: test\n", ""))
    with pytest.raises(TaskError, match=r"field 'validation_split': .*Unknown split \"validation\""):
        load_task(str(path))


def test_a_hub_dataset_that_is_not_cached_offline_needs_a_network(tmp_path, datasets_here):
    assert datasets_here.config.HF_HUB_OFFLINE  # conftest: the test process never reaches the hub
    with pytest.raises(TaskError) as err:
        load_task(str(task_file(tmp_path, "llmassay-test/not-downloaded")))
    message = str(err.value)
    assert "\n" not in message
    assert "field 'dataset_path': 'llmassay-test/not-downloaded' has no local copy and cannot be fetched from " \
           "the hub (" in message and "it needs a network, or a local copy; or use 'json' or 'csv'" in message
