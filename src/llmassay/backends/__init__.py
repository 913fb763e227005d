"""Model backends behind one contract (`base.Backend`): the embedded llama.cpp, transformers, and
OpenAI-compatible servers; `load_backend("KIND/NAME")` picks one, `register_backend` adds one."""

from llmassay.backends.base import Backend, load_backend, parse_model_args, register_backend

__all__ = ["Backend", "load_backend", "parse_model_args", "register_backend"]
