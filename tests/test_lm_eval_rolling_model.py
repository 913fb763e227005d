"""Rolling log-likelihood on a real model (SmolLM2-135M, llama.cpp): one window equals the
plain empty-context score bit for bit, and short windows lose context as they should."""

from __future__ import annotations

import pytest

from llmassay.engine.engine import Engine
from llmassay.engine.rolling import loglikelihood_rolling
from llmassay.types import LoglikelihoodRequest

TEXT = ("It was a bright cold day in the market town, and the river ran high under the old bridge. "
        "The boatmen talked of the weather, and the children watched the water go by.")


@pytest.mark.slow
def test_one_window_is_the_empty_context_score_and_short_windows_cost_context(smollm2):
    engine = Engine(smollm2)
    [whole] = loglikelihood_rolling(engine, [TEXT])
    [plain] = engine.loglikelihood([LoglikelihoodRequest("", TEXT)])
    assert whole.n_windows == 1 and whole.n_tokens == plain.n_tokens
    assert whole.logprob == plain.logprob  # the same tokens after the same prefix token

    class Short:  # the same model read through 8-token windows
        name = "short"

        def __getattr__(self, attr):
            return getattr(smollm2, attr)

        def rolling_tokens(self, text):
            tokens, prefix, _ = smollm2.rolling_tokens(text)
            return tokens, prefix, 8

    [short] = loglikelihood_rolling(Engine(Short()), [TEXT])
    assert short.n_windows == -(-whole.n_tokens // 8) and short.n_tokens == whole.n_tokens
    assert short.logprob < whole.logprob - 5  # less context, a worse fit (bits, not noise)
