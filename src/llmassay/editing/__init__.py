"""Knowledge editing: change a fact in the weights (ROME-style rank-one update of one MLP
down-projection) and measure it the CounterFact way (efficacy, paraphrase, neighbourhood).

`edits` reads and validates edit requests, `scores` turns them into log-likelihood
requests and per-edit rows (no torch), `rome` computes an edit on a transformers model,
`delta` writes and applies the changed matrices (`--model-args edits=DIR` on the hf
backend). torch is imported only by `rome` and `delta`.
"""
