"""Task files: bundled tasks, plain JSONL/CSV, and lm-evaluation-harness YAMLs (templates, filters,
groups, metrics), loaded into one `Task` shape."""

from llmassay.tasks.loader import Task, TaskError, bundled_tasks, load_task

__all__ = ["Task", "TaskError", "bundled_tasks", "load_task"]
