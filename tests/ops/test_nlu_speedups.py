"""bot/ops/nlu_speedups.py gives Rasa's and scikit-learn's own NLU results, bit for bit.

The pipeline is config.yml's (tokenizer, the two count vectorizers, the logistic regression), trained in
tmp_path on data/nlu/*.yml; it then featurizes every training text plus odd ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import numpy as np
import pytest
import scipy.sparse
import yaml
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier
from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import CountVectorsFeaturizer
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.loading import load_data
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.ops import nlu_speedups
from bot.ops.rasa_main import count_sentence_features_only, keep_intent_coefficients_column_major

ROOT = Path(__file__).resolve().parents[2]
ODD_TEXTS = [
    "", " ", "\t\n", "!!!", ":)", "🙂", "🙂🙂 hi 🙂", "zzqx blorf quuxle", "hi hi hi hi hi hi", "therapy " * 400,
    " ".join(f"word{n}" for n in range(300)), "12 345 2024 3.14 10'000.00", "call 555-0100 at 9am",
    "ÀÉÎ café naïve", "I'M SHOUTING ABOUT THERAPY", "a\tb\nc", "self-harm?! self–harm…", "你好 谢谢",
    "x", "aa", "me@example.com", "http://example.com/a?b=c", "#hashtag @someone & co", "no no no no",
    "I I I I I I I I I I want want want to to to book book book",
]


def nlu_texts() -> List[str]:
    texts: List[str] = []
    for path in sorted(ROOT.glob("data/nlu/*.yml")):
        texts += [message.get(TEXT) for message in load_data(str(path)).training_examples if message.get(TEXT)]
    assert len(texts) > 300
    return texts


def pipeline_config(name: str) -> List[Dict[str, Any]]:
    config = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    return [{k: v for k, v in c.items() if k != "name"} for c in config["pipeline"] if c["name"] == name]


class Pipeline:
    """config.yml's tokenizer, count vectorizers and intent classifier, trained on data/nlu."""

    def __init__(self, tmp_path: Path) -> None:
        storage, context = LocalModelStorage(tmp_path), ExecutionContext(GraphSchema({}), "nlu")
        self.tokenizer = WhitespaceTokenizer(WhitespaceTokenizer.get_default_config())
        self.featurizers = []
        training = TrainingData()
        for path in sorted(ROOT.glob("data/nlu/*.yml")):
            training = training.merge(load_data(str(path)))
        self.tokenizer.process_training_data(training)
        for index, extra in enumerate(pipeline_config("CountVectorsFeaturizer")):
            config = {**CountVectorsFeaturizer.get_default_config(), **extra}
            featurizer = CountVectorsFeaturizer.create(config, storage, Resource(f"cv{index}"), context)
            featurizer.train(training)
            featurizer.process_training_data(training)
            self.featurizers.append(featurizer)
        assert len(self.featurizers) == 2
        (extra,) = pipeline_config("LogisticRegressionClassifier")
        config = {**LogisticRegressionClassifier.get_default_config(), **extra}
        self.classifier = LogisticRegressionClassifier.create(config, storage, Resource("intents"), context)
        self.classifier.train(training)
        assert self.classifier.clf.classes_.size > 20

    def featurized(self, text: str) -> Message:
        message = Message(data={TEXT: text})
        self.tokenizer.process([message])
        for featurizer in self.featurizers:
            featurizer.process([message])
        return message


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    return Pipeline(tmp_path_factory.mktemp("nlu"))


@pytest.fixture(scope="module")
def texts() -> List[str]:
    return nlu_texts() + ODD_TEXTS


@pytest.fixture
def restore_rasa() -> Iterator[None]:
    """Undo every patch a test installs (class attributes as Rasa defines them)."""
    saved = [(cls, name, cls.__dict__[name]) for cls, name in [
        (CountVectorsFeaturizer, "_create_features"), (LogisticRegressionClassifier, "_create_X"),
        (LogisticRegressionClassifier, "process"), (LogisticRegressionClassifier, "load"),
    ]]
    yield
    for cls, name, value in saved:
        setattr(cls, name, value)


def stored(matrix: Any) -> Dict[str, Any]:
    """A matrix's attributes, arrays by dtype and shape (their contents are compared separately)."""
    return {key: (value.dtype, value.shape) if isinstance(value, np.ndarray) else value
            for key, value in sorted(vars(matrix).items())}


def coo_parts(matrix: Any) -> Tuple[Any, ...]:
    return (type(matrix), matrix.shape, matrix.dtype, matrix.row.dtype, matrix.col.dtype,
            matrix.has_canonical_format, stored(matrix))


def assert_same_coo(ours: Any, theirs: Any) -> None:
    assert coo_parts(ours) == coo_parts(theirs)
    for name in ("data", "row", "col"):
        assert np.array_equal(getattr(ours, name), getattr(theirs, name)), name


def test_one_text_counts_are_sklearns_sentence_features(pipeline: Pipeline, texts: List[str],
                                                        restore_rasa: None) -> None:
    rasa_create = CountVectorsFeaturizer._create_features
    count_sentence_features_only()
    nlu_speedups.count_one_text_directly()
    assert CountVectorsFeaturizer._create_features is not rasa_create
    fast, checked, empty = CountVectorsFeaturizer._create_features, 0, 0
    for text in texts:
        tokens = pipeline.tokenizer.process([Message(data={TEXT: text})])[0].get("text_tokens") or []
        words = [token.text for token in tokens]
        for featurizer in pipeline.featurizers:
            for attribute in [TEXT]:  # the only attribute a parsed message has
                theirs = rasa_create(featurizer, attribute, [words])
                ours = fast(featurizer, attribute, [words])
                assert ours[0] == [None]  # no sequence features (count_sentence_features_only's contract)
                if theirs[1][0] is None:
                    assert ours[1][0] is None
                    continue
                assert_same_coo(ours[1][0], theirs[1][0])
                sklearn = featurizer.vectorizers[attribute].transform([" ".join(words)])
                sklearn.sort_indices()
                assert_same_coo(ours[1][0], sklearn.tocoo())
                checked += 1
                empty += ours[1][0].nnz == 0
    assert checked >= 2 * len(texts) - 10 and empty > 0  # unknown words give an empty row, as in sklearn


def test_unverified_vectorizer_configurations_take_sklearns_path(pipeline: Pipeline) -> None:
    featurizer = pipeline.featurizers[0]
    assert nlu_speedups.counter_for(featurizer, TEXT) is not None
    vectorizer = featurizer.vectorizers[TEXT]
    try:
        vectorizer.binary = True
        featurizer.__dict__.pop("_one_text_counters", None)
        assert nlu_speedups.counter_for(featurizer, TEXT) is None
    finally:
        vectorizer.binary = False
        featurizer.__dict__.pop("_one_text_counters", None)


def csr_parts(matrix: Any) -> Tuple[Any, ...]:
    return (type(matrix), matrix.shape, matrix.dtype, matrix.indices.dtype, matrix.indptr.dtype, stored(matrix))


def featurized_messages(pipeline: Pipeline, texts: List[str]) -> List[Message]:
    count_sentence_features_only()
    nlu_speedups.count_one_text_directly()  # what production runs (proven equal above)
    return [pipeline.featurized(text) for text in texts]


def test_intent_rows_are_rasas(pipeline: Pipeline, texts: List[str], restore_rasa: None) -> None:
    rasa_create_x = LogisticRegressionClassifier._create_X
    messages = featurized_messages(pipeline, texts)
    built = 0
    for message in messages:
        theirs = rasa_create_x(pipeline.classifier, [message])
        ours = nlu_speedups.intent_row(message)
        if ours is None:
            continue
        built += 1
        assert scipy.sparse.isspmatrix_csr(theirs) and scipy.sparse.isspmatrix_csr(ours)
        assert csr_parts(ours) == csr_parts(theirs)
        for name in ("data", "indices", "indptr"):
            assert np.array_equal(getattr(ours, name), getattr(theirs, name)), name
    assert built >= len(texts) - 10


def test_intent_probabilities_are_sklearns(pipeline: Pipeline, texts: List[str], restore_rasa: None) -> None:
    rasa_create_x = LogisticRegressionClassifier._create_X
    clf = pipeline.classifier.clf
    messages = [m for m in featurized_messages(pipeline, texts) if nlu_speedups.intent_row(m) is not None]
    theirs = [clf.predict_proba(rasa_create_x(pipeline.classifier, [m])) for m in messages]
    assert nlu_speedups.is_multinomial(clf)
    coefficients = clf.coef_
    try:
        for layout in (np.ascontiguousarray, np.asfortranarray):  # Rasa's, and production's (rasa_main 7.)
            clf.coef_ = layout(coefficients)
            for message, expected in zip(messages, theirs, strict=True):
                ours = nlu_speedups.probabilities(clf, nlu_speedups.intent_row(message))
                assert ours.dtype == expected.dtype and ours.shape == expected.shape
                assert np.array_equal(ours, expected)
    finally:
        clf.coef_ = coefficients


def rasa_ranking(classes: np.ndarray, confidences: np.ndarray, length: int) -> List[Dict[str, Any]]:
    everything = [{"name": k, "confidence": v} for k, v in zip(classes, confidences, strict=True)]
    ordered = sorted(everything, key=lambda e: -e["confidence"])
    return ordered[:length] if length > 0 else ordered


def typed(ranking: List[Dict[str, Any]]) -> List[Tuple[Any, ...]]:
    """Each entry's name and confidence with their types, the confidence bit for bit (NaN too)."""
    return [(entry["name"], type(entry["name"]), np.float64(entry["confidence"]).tobytes(),
             type(entry["confidence"]), sorted(entry)) for entry in ranking]


@pytest.mark.parametrize("length", [0, -1, 1, 3, 10, 500])
def test_rankings_with_ties_are_rasas(length: int) -> None:
    rng = np.random.default_rng(3)
    classes = np.array([f"intent_{n:02d}" for n in range(60)])
    for _ in range(300):
        confidences = rng.random(60)
        confidences[rng.integers(0, 60, 20)] = rng.choice([0.0, 0.25, confidences[0], 1e-300])  # ties
        ours = nlu_speedups.ranking(classes, confidences, length)
        assert typed(ours) == typed(rasa_ranking(classes, confidences, length))
    with_nan = np.array([0.2, np.nan, 0.2, 0.6])
    assert typed(nlu_speedups.ranking(classes[:4], with_nan, 2)) == typed(rasa_ranking(classes[:4], with_nan, 2))


def parse(classifier: LogisticRegressionClassifier, message: Message) -> Tuple[Any, Any, bool]:
    copy = Message(data=dict(message.data), features=list(message.features))
    (processed,) = classifier.process([copy])
    intent, ranking = processed.get("intent"), processed.get("intent_ranking")
    return typed([intent]), typed(ranking), intent is ranking[0]


@pytest.mark.parametrize("length", [10, 0, 3])
def test_the_classifier_gives_rasas_intents_and_rankings(pipeline: Pipeline, texts: List[str],
                                                         restore_rasa: None, length: int) -> None:
    messages = featurized_messages(pipeline, texts)
    messages = [m for m in messages if nlu_speedups.intent_row(m) is not None]
    classifier = pipeline.classifier
    classifier.config = {**classifier.config, "ranking_length": length}
    coefficients = classifier.clf.coef_
    theirs = [parse(classifier, message) for message in messages]  # Rasa's process, rows and layout
    try:
        keep_intent_coefficients_column_major()  # only affects load: lay them out as production does
        classifier.clf.coef_ = np.asfortranarray(coefficients)
        nlu_speedups.build_intent_rows_directly()
        nlu_speedups.rank_intents_without_sklearn_checks()
        ours = [parse(classifier, message) for message in messages]
    finally:
        classifier.clf.coef_ = coefficients
        classifier.config = {**classifier.config, "ranking_length": 10}
    assert ours == theirs
    assert all(len(ranking) == (length or classifier.clf.classes_.size) for _, ranking, _ in ours)
