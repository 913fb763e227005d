"""Multi-turn pressure on a multiple-choice answer: the conversations the multiturn probe sends
(`conversations`) and how it counts what changed between turns (`transitions`). Domain code:
it knows no probe; `probes/multiturn.py` adapts it."""
