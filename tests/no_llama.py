"""`python tests/no_llama.py ARGS…`: the llmassay CLI on an install without the [llamacpp]
extra — `llama_cpp` cannot be imported (a meta-path finder refuses it), whatever is in the
venv. Prints the refused imports to stderr as `refused: NAME` (code that tolerates the
absence, such as the environment block's llama.cpp system info, may try)."""

from __future__ import annotations

import sys


class _NoLlama:
    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "llama_cpp" or name.startswith("llama_cpp."):
            print(f"refused: {name}", file=sys.stderr)
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


if __name__ == "__main__":
    sys.meta_path.insert(0, _NoLlama())
    from llmassay.cli import main

    code = main(sys.argv[1:])
    sys.exit(code)
