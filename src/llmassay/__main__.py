"""`python -m llmassay`: the same command as `llmassay`."""

import sys

from llmassay.cli.app import entry

sys.exit(entry())
