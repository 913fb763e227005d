"""The `llmassay` command line: one module per command group, each thin (parse, call the library, print).

`app` builds the parser and dispatches; `run` (run, assess, report, compare, probes, tasks,
perturbations), `audit`, `facts`, `watermark`, `tokens`, `judge`, `efficiency` and `lmeval`
(lm-eval's flags and results shape) each add their subcommands.
"""

from llmassay.cli.app import entry, main

__all__ = ["entry", "main"]
