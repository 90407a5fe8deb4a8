"""The detector's fast paths give exactly what the plain (slow) implementations give.

Speed work for `make bench-safety` (issue 3) replaced three straightforward steps with faster ones:
one Matcher per rule pattern, run only when the message has the pattern's required words (instead
of a Matcher per anchor word); normalization patterns skipped when their literal text is absent;
character n-gram columns cached per word. Each check below compares against the slow path on every
labelled example plus awkward inputs.
"""

from __future__ import annotations

import numpy as np
import pytest

from bot.safety.classifier import FastFeatures, RiskClassifier
from bot.safety.data_files import load_examples, load_rule_documents
from bot.safety.normalize import Normalizer, required_text
from bot.safety.rules import RuleSet

# Written for this test: spacing, case, punctuation, digits and non-ASCII the examples rarely have.
AWKWARD = [
    "",
    "   ",
    "I\tCAN'T\n\ndo   this  anymore!!!",
    "not not not suicidal, no, not at all",
    "why do i even try... nobody would notice if i was gone",
    "Ich will nicht mehr leben — je veux mourir",
    "İstanbul ΣΊΣΥΦΟΣ straße",
    "kms kms kms 12345 $$$ @@@",
    "self - harm s.h sh urges again tonight",
    "i i i i i i i i i i want want want to to to die die die",
    "how how many many pills pills",
    "emoji 😊 and a lone surrogate \ud800 inside",
]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return [text for text, _level, _category in load_examples()] + AWKWARD


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    documents = load_rule_documents()
    return RuleSet(documents["rules"], Normalizer.from_dict(documents["normalize"]))


def test_rule_matches_equal_one_matcher_with_every_pattern(rules: RuleSet, texts: list[str]) -> None:
    docs = rules.docs([rules.normalize(text) for text in texts])
    differing = [doc.text for doc in docs if rules._matches(doc) != rules.reference_matches(doc)]
    assert differing == []
    # The comparison is not vacuous: most risk examples do match something.
    assert sum(bool(rules._matches(doc)) for doc in docs) > len(docs) / 2


def test_normalizer_skips_only_patterns_that_could_not_change_the_text(texts: list[str]) -> None:
    document = load_rule_documents()["normalize"]
    fast = Normalizer.from_dict(document)
    slow = Normalizer.from_dict(document)
    slow.skip_patterns_by_text = False
    assert [fast(text) for text in texts] == [slow(text) for text in texts]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r"\bcan't\b", "can't"),
        (r"\bself[\s\-_]*harm(?:ing|ed)?\b", "self"),
        (r"\b(?:i|been)\s+sh\b", "sh"),
        (r"(?:a|b)+", ""),
        (r"(?i)\bkms\b", ""),
    ],
)
def test_required_text(pattern: str, expected: str) -> None:
    assert required_text(pattern) == expected


def test_classifier_features_equal_the_feature_union(texts: list[str]) -> None:
    examples = load_examples()
    normalize = Normalizer.from_dict(load_rule_documents()["normalize"])
    # Trained on half the examples so the other half has words outside the vocabulary.
    train = examples[::2]
    classifier = RiskClassifier.train([normalize(t) for t, _, _ in train], [level for _, level, _ in train])
    normalized = [normalize(text) for text in texts]
    expected = classifier.features.transform(normalized)
    fast = FastFeatures(classifier.features)
    for attempt in ("cold cache", "warm cache"):
        got = fast.transform(normalized)
        assert got.shape == expected.shape, attempt
        assert np.array_equal(got.indptr, expected.indptr), attempt
        assert np.array_equal(got.indices, expected.indices), attempt
        assert np.array_equal(got.data, expected.data), attempt
    probabilities = classifier.binary.predict_proba(expected)[:, list(classifier.binary.classes_).index(True)]
    assert np.array_equal(classifier.risk_probabilities(normalized), probabilities)
    # One text at a time (how the Rasa component calls it) takes the plain-Python row: the same row, bit for bit.
    for index, text in enumerate(normalized):
        row = fast.transform([text])
        assert row.shape == (1, expected.shape[1]), text
        wanted = expected[index]
        assert np.array_equal(row.indices, wanted.indices), text
        assert (row.indices.dtype, row.indptr.dtype, row.data.dtype) == (
            wanted.indices.dtype, wanted.indptr.dtype, wanted.data.dtype
        ), text
        assert np.array_equal(row.data, wanted.data), text
        assert classifier.risk_probabilities([text])[0] == probabilities[index], text
    # Those probabilities came from the classifier's own arithmetic, not from sklearn's predict_proba ...
    sklearn_predict_proba = classifier.binary.predict_proba
    classifier.binary.predict_proba = None  # type: ignore[method-assign]
    assert np.array_equal(classifier.risk_probabilities(normalized), probabilities)
    # ... which still answers (and raises) for input its checks exist for.
    classifier.binary.predict_proba = sklearn_predict_proba  # type: ignore[method-assign]
    broken = expected[:1].copy()
    broken.data[0] = np.nan
    with pytest.raises(ValueError):
        classifier._risk_of(broken)


def test_column_major_coefficients_give_the_same_probabilities(texts: list[str]) -> None:
    import copy

    examples = load_examples()
    normalize = Normalizer.from_dict(load_rule_documents()["normalize"])
    classifier = RiskClassifier.train([normalize(t) for t, _, _ in examples], [level for _, level, _ in examples])
    assert classifier.leveler.coef_.flags.f_contiguous and classifier.leveler.coef_.shape[0] > 1
    matrix = classifier.features.transform([normalize(text) for text in texts])
    for model in (classifier.binary, classifier.leveler):
        row_major = copy.deepcopy(model)
        row_major.coef_ = np.ascontiguousarray(model.coef_)
        assert np.array_equal(model.predict_proba(matrix), row_major.predict_proba(matrix))
        for index in range(0, matrix.shape[0], 7):  # one row at a time, as the Rasa component asks
            assert np.array_equal(model.predict_proba(matrix[index]), row_major.predict_proba(matrix[index]))
