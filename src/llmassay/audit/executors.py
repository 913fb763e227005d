"""Where an audit's per-batch work runs: in this process, or sharded over Ray workers.

An audit is written as `map(fn, batches, shared)` followed by an in-order merge, so the
executor is the only thing that changes between `--executor local` and `--executor ray`,
and both give identical results (batches come back in the order they went out).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from llmassay.raycluster import connect_ray
from llmassay.types import LlmassayError

EXECUTORS = ("local", "ray")


class BatchExecutor(Protocol):
    name: str

    def map(self, fn: Callable[[Any, Any], Any], batches: Iterable[Any], shared: Any) -> Iterator[Any]: ...

    def close(self) -> None: ...


class LocalExecutor:
    """In-process, one batch at a time."""

    name = "local"

    def map(self, fn: Callable[[Any, Any], Any], batches: Iterable[Any], shared: Any) -> Iterator[Any]:
        for batch in batches:
            yield fn(batch, shared)

    def close(self) -> None:
        pass


class RayShardExecutor:
    """Ray tasks over shards of the stream (named apart from the engine's RayExecutor, whose
    workers are model actors); `shared` (e.g. the contamination index) is put in the object
    store once. At most `2 × workers` batches are in flight, so memory stays
    bounded on any corpus size."""

    name = "ray"

    def __init__(self, num_cpus: int | None = None, address: str | None = None) -> None:
        ray, self._started = connect_ray(num_cpus, address)
        self._ray = ray
        self.workers = max(1, int(ray.available_resources().get("CPU", 1)))

    def map(self, fn: Callable[[Any, Any], Any], batches: Iterable[Any], shared: Any) -> Iterator[Any]:
        ray = self._ray
        remote = ray.remote(num_cpus=1)(fn)
        shared_ref = ray.put(shared)
        pending: deque[Any] = deque()
        for batch in batches:
            pending.append(remote.remote(batch, shared_ref))
            if len(pending) >= 2 * self.workers:
                yield ray.get(pending.popleft())
        while pending:
            yield ray.get(pending.popleft())

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()


def make_executor(name: str, num_cpus: int | None = None) -> BatchExecutor:
    if name == "local":
        return LocalExecutor()
    if name == "ray":
        return RayShardExecutor(num_cpus=num_cpus)
    raise LlmassayError(f"--executor: '{name}' is not one of {', '.join(EXECUTORS)}")
