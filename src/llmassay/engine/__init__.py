"""What a model answers: the request cache, the run store that makes runs resumable, and the
`Engine` that batches, deduplicates and caches requests for every probe."""

from llmassay.engine.cache import RequestCache
from llmassay.engine.engine import Engine, EngineStats
from llmassay.engine.store import RunStore, SampleLog

__all__ = ["Engine", "EngineStats", "RequestCache", "RunStore", "SampleLog"]
