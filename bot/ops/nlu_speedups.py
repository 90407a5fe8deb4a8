"""Faster NLU parsing of one message, with Rasa's exact results (installed by bot/ops/rasa_main.py).

For one short message most of the intent classifier's and the count vectorizers' time was library
overhead around a few dozen numbers (py-spy under load: ~10% of the Rasa server's CPU):

1. The intent classifier's input row is built directly as one CSR row: the sparse sentence features'
column indices (shifted by the widths before them) and values, concatenated. scipy's hstack/vstack did
the same through COO conversions and format checks. Same entries, same (sorted) order, dtype and shape;
anything unusual (dense features, several messages, unsorted or repeated columns) takes the old path.

2. The intent probabilities are sklearn's own arithmetic without its per-call input validation:
LogisticRegression.predict_proba (multinomial, scikit-learn 1.1.3) is `X @ coef_.T + intercept_`
(safe_sparse_dot is `@`) and then sklearn's softmax; the validation only checks what is checked here
once (a fitted multinomial model, a float64 CSR of the right width, finite values).

3. The ranking builds {"name", "confidence"} dicts only for the kept `ranking_length` intents. A
stable argsort of the negated probabilities orders exactly as Rasa's stable `sorted(key=-confidence)`
(ties keep class order) when all are finite; otherwise Rasa's own sort runs.

4. A count vectorizer's sentence features for one text are counted directly: sklearn's own analyzer
(built once per vectorizer) and vocabulary, then the same COO matrix Rasa makes of
`transform([text])` (int64 counts, int32 sorted columns, shape 1 x vocabulary). Only a plain
CountVectorizer with binary=False and dtype int64 (Rasa's configuration) takes this path.

Both matrices are made the way scipy's constructors store already valid arrays, without re-checking them
(sparse_without_checks; the constructors again if scipy stores anything else).

tests/ops/test_nlu_speedups.py compares each one with Rasa's and sklearn's results bit for bit.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Tuple

import numpy as np
import scipy.sparse

from bot.sparse_rows import sparse_without_checks


def intent_row(message: Any) -> scipy.sparse.csr_matrix | None:
    """The classifier's input row for one message, or None when only the general path is sure."""
    from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, TEXT

    columns: List[np.ndarray] = []
    values: List[np.ndarray] = []
    width = 0
    for feature in message.features:
        if feature.attribute != TEXT or feature.type != FEATURE_TYPE_SENTENCE:
            continue
        if not feature.is_sparse():
            return None  # dense features: rare here, Rasa's combination handles them
        matrix = feature.features
        if not scipy.sparse.isspmatrix_coo(matrix) or matrix.shape[0] != 1:
            return None
        col = matrix.col
        if col.size > 1 and not (col[1:] > col[:-1]).all():
            return None  # repeated or unsorted columns: scipy would sum and sort them
        columns.append(col.astype(np.int64) + width)
        values.append(matrix.data)
        width += matrix.shape[1]
    if not values:
        return None  # no sparse sentence features: the general path gives Rasa's answer (or error)
    dtype = np.result_type(np.float64, *(part.dtype for part in values))  # as scipy's stack upcasts
    data = np.concatenate(values).astype(dtype, copy=False)
    indices = np.concatenate(columns)
    if width > np.iinfo(np.int32).max:
        return None  # scipy would choose 64-bit indices
    return sparse_without_checks(scipy.sparse.csr_matrix, _shape=(1, width), data=data,
                                 indices=indices.astype(np.int32), indptr=np.array([0, data.size], dtype=np.int32))


def is_multinomial(classifier: Any) -> bool:
    """A fitted sklearn LogisticRegression whose predict_proba is the softmax of its decision function."""
    from sklearn.linear_model import LogisticRegression

    if type(classifier) is not LogisticRegression or not hasattr(classifier, "coef_"):
        return False
    if hasattr(classifier, "feature_names_in_"):
        return False  # sklearn would compare names; Rasa fits on sparse matrices, which have none
    ovr = classifier.multi_class in ["ovr", "warn"] or (
        classifier.multi_class == "auto" and (classifier.classes_.size <= 2 or classifier.solver == "liblinear")
    )
    return not ovr and classifier.coef_.shape[0] > 1  # one row of coefficients: sklearn's 1-d special case


def probabilities(classifier: Any, rows: Any) -> np.ndarray:
    """classifier.predict_proba(rows): the same operations, without sklearn's checks of its input."""
    from sklearn.utils.extmath import softmax

    if (
        not is_multinomial(classifier)
        or not scipy.sparse.isspmatrix_csr(rows)
        or rows.dtype != np.float64
        or rows.shape[0] < 1
        or rows.shape[1] != classifier.n_features_in_
        or not np.isfinite(rows.data).all()  # sklearn raises for these: let it
    ):
        return np.asarray(classifier.predict_proba(rows))
    scores = rows @ classifier.coef_.T + classifier.intercept_  # decision_function's safe_sparse_dot
    return np.asarray(softmax(scores, copy=False))


def ranking(classes: np.ndarray, confidences: np.ndarray, length: int) -> List[Dict[str, Any]]:
    """Rasa's sorted intent ranking (cut to `length` when positive), building only the kept dicts."""
    if not np.isfinite(confidences).all():  # NaN would order differently in numpy and in sorted()
        everything = [{"name": k, "confidence": v} for k, v in zip(classes, confidences, strict=True)]
        ordered = sorted(everything, key=lambda e: -e["confidence"])
        return ordered[:length] if length > 0 else ordered
    order = np.argsort(-confidences, kind="stable")
    if length > 0:
        order = order[:length]
    # Indexing gives the same numpy scalars (np.str_, np.float64) as iterating the arrays does.
    return [{"name": classes[index], "confidence": confidences[index]} for index in order.tolist()]


def build_intent_rows_directly() -> None:
    from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier

    general_create_x = LogisticRegressionClassifier._create_X

    def create_x(self: LogisticRegressionClassifier, messages: List[Any]) -> Any:
        if len(messages) == 1:  # parsing; training stacks many rows on the general path
            row = intent_row(messages[0])
            if row is not None:
                return row
        return general_create_x(self, messages)

    LogisticRegressionClassifier._create_X = create_x


def rank_intents_without_sklearn_checks() -> None:
    from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier
    from rasa.utils.tensorflow.constants import RANKING_LENGTH

    def process(self: LogisticRegressionClassifier, messages: List[Any]) -> List[Any]:
        rows = self._create_X(messages)
        probas = probabilities(self.clf, rows)
        for index, message in enumerate(messages):
            intent_ranking = ranking(self.clf.classes_, probas[index], self.config[RANKING_LENGTH])
            message.set("intent", intent_ranking[0], add_to_output=True)  # the same dict, as in Rasa
            message.set("intent_ranking", intent_ranking, add_to_output=True)
        return messages

    LogisticRegressionClassifier.process = process


Counter = Tuple[Any, Callable[[str], List[str]], Dict[str, int]]


def sentence_counts(vectorizer: Any, analyze: Callable[[str], List[str]], vocabulary: Dict[str, int],
                    text: str) -> scipy.sparse.coo_matrix:
    """`vectorizer.transform([text])`, sorted and as COO, as Rasa's sentence features are."""
    counts: Dict[int, int] = {}
    for term in analyze(text):
        index = vocabulary.get(term)
        if index is not None:  # out-of-vocabulary terms are skipped, as sklearn does
            counts[index] = counts.get(index, 0) + 1
    columns = sorted(counts)
    # What csr.tocoo() makes of sklearn's sorted row: int64 counts, int32 rows and columns.
    return sparse_without_checks(scipy.sparse.coo_matrix, _shape=(1, len(vocabulary)),
                                 row=np.zeros(len(columns), np.int32), col=np.array(columns, dtype=np.int32),
                                 data=np.array([counts[column] for column in columns], dtype=np.int64))


def counter_for(featurizer: Any, attribute: str) -> Counter | None:
    """The vectorizer with its analyzer and vocabulary, when its configuration is one verified here."""
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = featurizer.vectorizers.get(attribute)
    known: Dict[str, Counter | None] = featurizer.__dict__.setdefault("_one_text_counters", {})
    cached = known.get(attribute)
    if cached is not None and cached[0] is vectorizer and cached[2] is getattr(vectorizer, "vocabulary_", None):
        return cached
    if type(vectorizer) is not CountVectorizer or vectorizer.binary or vectorizer.dtype is not np.int64:
        return None
    vectorizer._check_vocabulary()  # what transform checks first (and fixes a given vocabulary)
    if len(vectorizer.vocabulary_) > np.iinfo(np.int32).max:
        return None
    known[attribute] = (vectorizer, vectorizer.build_analyzer(), vectorizer.vocabulary_)
    return known[attribute]


def count_one_text_directly() -> None:
    from rasa.nlu.constants import DENSE_FEATURIZABLE_ATTRIBUTES
    from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import CountVectorsFeaturizer

    general_create = CountVectorsFeaturizer._create_features
    if not getattr(general_create, "sentence_only", False):
        return  # Rasa's own path also computes sequence features, which this one does not

    def create_features(
        self: CountVectorsFeaturizer, attribute: str, all_tokens: List[List[str]]
    ) -> Tuple[List[Any], List[Any]]:
        # Only where the general path computes sentence features alone (count_sentence_features_only).
        if len(all_tokens) == 1 and all_tokens[0] and attribute in DENSE_FEATURIZABLE_ATTRIBUTES:
            counter = counter_for(self, attribute) if self.vectorizers else None
            if counter is not None:
                return [None], [sentence_counts(*counter, " ".join(all_tokens[0]))]
        return general_create(self, attribute, all_tokens)

    CountVectorsFeaturizer._create_features = create_features
