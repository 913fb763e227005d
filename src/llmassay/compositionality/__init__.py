"""The compositionality gap (Press et al. 2022): two-hop questions built from the country KB,
each with its two single-hop sub-questions; how often a model that answers both hops still
misses the composition, and whether chain of thought or self-ask narrows it."""
