from llmassay.engine.cache import RequestCache
from llmassay.engine.engine import Engine, EngineStats
from llmassay.engine.store import RunStore, SampleLog

__all__ = ["Engine", "EngineStats", "RequestCache", "RunStore", "SampleLog"]
