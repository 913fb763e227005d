"""Knowledge editing: change a fact in the weights (ROME's rank-one update of one MLP
down-projection, or MEMIT's batch update spread over several) and measure it the
CounterFact way (efficacy, paraphrase, neighbourhood).

`edits` reads and validates edit requests, `scores` turns them into log-likelihood
requests and per-edit rows (no torch), `rome` computes an edit on a transformers model,
`memit` many edits at once from rome's parts, `session` runs either with the cached key
covariances, `delta` writes and applies the changed matrices (`--model-args edits=DIR` on
the hf backend). torch is imported only by `rome`, `memit`, `session` and `delta`.
"""
