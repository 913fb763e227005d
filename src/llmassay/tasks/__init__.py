from llmassay.tasks.loader import Task, TaskError, bundled_tasks, load_task

__all__ = ["Task", "TaskError", "bundled_tasks", "load_task"]
