from llmassay.backends.base import Backend, load_backend, parse_model_args, register_backend

__all__ = ["Backend", "load_backend", "parse_model_args", "register_backend"]
