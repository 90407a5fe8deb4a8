"""The risk classifier is the same model whatever the machine's BLAS threads (held-out figures depend on it)."""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits

from bot.safety.classifier import RiskClassifier
from bot.safety.data_files import load_examples


def test_training_gives_the_same_model_with_one_or_two_blas_threads() -> None:
    # A third of the examples: large enough that two threads change the solver's sums (they did before
    # training was limited to one thread), small enough to train twice quickly.
    examples = load_examples()[::3]
    texts, levels = [text for text, _, _ in examples], [level for _, level, _ in examples]
    models = []
    for threads in (1, 2):
        with threadpool_limits(limits=threads):
            models.append(RiskClassifier.train(texts, levels))
    one, two = models
    assert np.array_equal(one.binary.coef_, two.binary.coef_)
    assert np.array_equal(one.leveler.coef_, two.leveler.coef_)
