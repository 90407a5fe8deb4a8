"""A small trained risk classifier: word + character n-grams into two logistic regressions.

Trained from the team's labelled examples (data/safety/examples) plus the NLU training data during
`rasa train`; persisted inside the Rasa model. Two models share the features:
- a binary one, risk vs none, whose probability is the score compared with the threshold (a single
  4-class model would sum three risk classes and call any unfamiliar text "risky");
- a level model trained on the risk examples only, which picks concern / acute / imminent.
"""

from __future__ import annotations

import itertools
import math
import pickle
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
from scipy import sparse
from scipy.special import expit
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion
from sklearn.preprocessing import normalize
from threadpoolctl import threadpool_limits

from bot.safety.levels import LEVELS
from bot.sparse_rows import sparse_without_checks

DEFAULT_THRESHOLD = 0.8
MODEL_FILE = "risk_classifier.pkl"
# Missing an imminent message is the worst error, so its examples weigh more (on top of the balanced
# class weights): in the risk-vs-none model, so short goodbyes and time words reach the threshold, and in
# the level model, so a flagged imminent message is not rated acute. Chosen by cross-validation on our
# own examples (`make safety-dev-eval`, README "Safety"), never on a held-out set.
IMMINENT_WEIGHT_RISK = 3.0
IMMINENT_WEIGHT_LEVEL = 3.0


def build_features() -> FeatureUnion:
    return FeatureUnion(
        [
            ("words", TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True)),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True)),
        ]
    )


def build_model(random_state: int = 7) -> LogisticRegression:
    return LogisticRegression(C=8.0, class_weight="balanced", max_iter=3000, random_state=random_state)


@dataclass
class Prediction:
    risk_probability: float
    level: str


class RiskClassifier:
    """Texts must already be normalized (bot.safety.normalize)."""

    def __init__(
        self,
        features: FeatureUnion,
        binary: LogisticRegression,
        leveler: Any,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        self.features = features
        self.binary = binary
        self.leveler = leveler
        self.threshold = threshold
        _keep_coefficients_column_major(binary)
        _keep_coefficients_column_major(leveler)
        self._risk_column = list(binary.classes_).index(True)
        self._fast = FastFeatures(features)

    @classmethod
    def train(cls, texts: Sequence[str], levels: Sequence[str], threshold: float = DEFAULT_THRESHOLD) -> RiskClassifier:
        unknown = set(levels) - set(LEVELS)
        if unknown:
            raise ValueError(f"unknown levels in training data: {unknown}")
        if "none" not in levels or len(set(levels)) < 2:
            raise ValueError("the risk classifier needs examples of `none` and of at least one risk level")
        # One BLAS thread: with two, the solver's sums run in another order and the model comes out a
        # little different (one or two held-out messages move), so figures would depend on the machine.
        with threadpool_limits(limits=1):
            return cls._train(texts, levels, threshold)

    @classmethod
    def _train(cls, texts: Sequence[str], levels: Sequence[str], threshold: float) -> RiskClassifier:
        features = build_features()
        matrix = features.fit_transform(list(texts))
        labels = np.array(levels)
        is_risk = labels != "none"
        imminent = labels == "imminent"
        binary = build_model().fit(matrix, is_risk, sample_weight=np.where(imminent, IMMINENT_WEIGHT_RISK, 1.0))
        leveler = None
        if len(set(labels[is_risk])) > 1:
            level_weights = np.where(imminent[is_risk], IMMINENT_WEIGHT_LEVEL, 1.0)
            leveler = build_model().fit(matrix[is_risk], labels[is_risk], sample_weight=level_weights)
        return cls(features, binary, leveler or _OneLevel(str(labels[is_risk][0])), threshold)

    def risk_probabilities(self, normalized_texts: Sequence[str]) -> np.ndarray:
        return self._risk_of(self._fast.transform(normalized_texts))

    def _risk_of(self, matrix: sparse.csr_matrix) -> np.ndarray:
        """`binary.predict_proba(matrix)[:, risk column]`: sklearn's arithmetic (scikit-learn 1.1's
        decision function, then expit) without its per-call input checks (43 -> 11 us of a message's ~300);
        anything the checks would look at twice (another model, dtype, width, NaN) goes to sklearn."""
        model = self.binary
        if (
            type(model) is not LogisticRegression
            or hasattr(model, "feature_names_in_")
            or model.classes_.size != 2
            or model.multi_class not in ("auto", "ovr")
            or model.coef_.shape != (1, matrix.shape[1])
            or not sparse.isspmatrix_csr(matrix)
            or matrix.dtype != np.float64
            or matrix.shape[0] < 1
            or not np.isfinite(matrix.data).all()
        ):
            return self.binary.predict_proba(matrix)[:, self._risk_column]
        probability = (matrix @ model.coef_.T + model.intercept_).ravel()
        expit(probability, out=probability)
        return probability if self._risk_column == 1 else 1 - probability

    def predict(self, normalized_texts: Sequence[str]) -> List[Prediction]:
        if not normalized_texts:
            return []
        matrix = self._fast.transform(normalized_texts)
        risk = self._risk_of(matrix)
        flagged = np.flatnonzero(risk >= self.threshold)
        levels = ["none"] * len(normalized_texts)
        if len(flagged):
            for index, level in zip(flagged, self.leveler.predict(matrix[flagged]), strict=True):
                levels[index] = str(level)
        return [Prediction(float(p), level) for p, level in zip(risk, levels, strict=True)]

    def level_picks(self, normalized_texts: Sequence[str]) -> List[str]:
        """The level model's pick for every text, flagged or not (to see its confusion in dev-eval)."""
        if not normalized_texts:
            return []
        return [str(level) for level in self.leveler.predict(self._fast.transform(normalized_texts))]

    def save(self, directory: Path) -> None:
        stored = {
            "features": self.features,
            "binary": self.binary,
            "leveler": self.leveler,
            "threshold": self.threshold,
        }
        with open(directory / MODEL_FILE, "wb") as handle:
            pickle.dump(stored, handle)

    @classmethod
    def load(cls, directory: Path) -> RiskClassifier:
        # Only ever loads the file this project wrote into its own trained model.
        with open(directory / MODEL_FILE, "rb") as handle:
            stored = pickle.load(handle)
        return cls(stored["features"], stored["binary"], stored["leveler"], stored["threshold"])


def _keep_coefficients_column_major(model: Any) -> None:
    """scipy multiplies a sparse row by `coef_.T` only after making it C-contiguous: for the level
    model's (levels x features) matrix that was a copy of the whole matrix per message (~50 us, a third
    of a message's assessment). Column-major, `coef_.T` is already C-contiguous: the same numbers in the
    same order, so the same products (tests/safety/test_fast_paths.py)."""
    coefficients = getattr(model, "coef_", None)
    if isinstance(coefficients, np.ndarray):
        model.coef_ = np.asfortranarray(coefficients)


class FastFeatures:
    """The fitted FeatureUnion's `transform`, with the same numbers, about 2x faster.

    sklearn builds every character n-gram of every message in Python, and that was the classifier's
    main cost. `char_wb` n-grams never cross a space, so each word's n-gram columns are computed once
    and cached; word n-grams come from the vectorizer's own analyzer. The counts then go through the
    vectorizer's own TF-IDF weighting, and the blocks are joined row by row with numpy (scipy's
    hstack goes through COO). tests/safety/test_fast_paths.py checks the matrices are identical.
    """

    MAX_CACHED_WORDS = 50_000

    def __init__(self, union: FeatureUnion) -> None:
        self.union = union
        self._word_columns: Dict[str, List[int]] = {}
        # sklearn's `idf_` is a property that sums a sparse diagonal matrix on every read (~0.5 ms per
        # message); the fitted vector never changes, so it is read once per vectorizer.
        self._idf: Dict[int, np.ndarray] = {}
        self._single: bool | None = None
        self._functions: Dict[Tuple[int, str], Any] = {}

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        texts = list(texts)
        if len(texts) == 1 and self._one_row_path():
            return self._transform_one(texts[0])
        blocks = []
        for _name, vectorizer, weight in self.union._iter():
            if weight is None and _char_wb(vectorizer):
                blocks.append(self._counts_to_tfidf(vectorizer, self._char_wb_columns(vectorizer, texts)))
            elif weight is None and _plain_tfidf(vectorizer):
                blocks.append(self._counts_to_tfidf(vectorizer, self._analyzer_columns(vectorizer, texts)))
            else:
                block = vectorizer.transform(texts)
                blocks.append(block * weight if weight is not None else block)
        return _hstack_rows(blocks)

    def _one_row_path(self) -> bool:
        """Whether every block is a TF-IDF vectorizer `_tfidf_row` reproduces (sublinear tf, idf, l2)."""
        if self._single is None:
            self._single = all(
                weight is None and _plain_tfidf(vectorizer) and _sublinear_l2(vectorizer)
                for _name, vectorizer, weight in self.union._iter()
            )
        return self._single

    def _transform_one(self, text: str) -> sparse.csr_matrix:
        """`transform([text])` in plain Python: the Rasa component assesses one message at a time, and the
        batch path's dozen numpy and scipy calls cost ~0.4 ms whatever the batch size. The entries, their
        order and the arithmetic are the batch path's (tests/safety/test_fast_paths.py compares them)."""
        indices: List[int] = []
        data: List[float] = []
        first_column = 0
        for _name, vectorizer, _weight in self.union._iter():
            if _char_wb(vectorizer):
                columns = self._char_wb_columns(vectorizer, [text])[0]
            else:
                columns = self._analyzer_columns(vectorizer, [text])[0]
            block_indices, block_data = self._tfidf_row(vectorizer, columns)
            indices.extend(column + first_column for column in block_indices)
            data.extend(block_data)
            first_column += len(vectorizer.vocabulary_)
        if first_column > np.iinfo(np.int32).max:  # scipy would choose 64-bit indices
            return sparse.csr_matrix(
                (np.array(data, dtype=np.float64), np.array(indices, dtype=np.int64), np.array([0, len(data)])),
                shape=(1, first_column),
            )
        # The arrays scipy's constructor would store (int32 indices for this width), without its checks.
        return sparse_without_checks(
            sparse.csr_matrix,
            _shape=(1, first_column),
            data=np.array(data, dtype=np.float64),
            indices=np.array(indices, dtype=np.int32),
            indptr=np.array([0, len(data)], dtype=np.int32),
        )

    def _tfidf_row(self, vectorizer: TfidfVectorizer, columns: List[int]) -> Tuple[List[int], List[float]]:
        """One row of `_counts_to_tfidf`: columns in descending order, 1 + log(tf), times idf, unit length."""
        counts = Counter(columns)
        ordered = sorted(counts, reverse=True)
        idf = self._idf_of(vectorizer)
        # The logarithm through numpy, as in the batch path; the rest is the same IEEE arithmetic.
        logs = np.log(np.array([counts[column] for column in ordered], dtype=np.float64)) + 1
        values = [float(value) * float(idf[column]) for value, column in zip(logs, ordered, strict=True)]
        square_sum = 0.0
        for value in values:  # sklearn's row normalisation adds the squares in stored order
            square_sum += value * value
        if square_sum == 0.0:
            return ordered, values
        norm = math.sqrt(square_sum)
        return ordered, [value / norm for value in values]

    def _idf_of(self, vectorizer: TfidfVectorizer) -> np.ndarray:
        idf = self._idf.get(id(vectorizer))
        if idf is None:
            idf = self._idf[id(vectorizer)] = vectorizer._tfidf.idf_
        return idf

    def _char_wb_columns(self, vectorizer: TfidfVectorizer, texts: List[str]) -> List[List[int]]:
        preprocess = self._built(vectorizer, "preprocessor", vectorizer.build_preprocessor)
        vocabulary = vectorizer.vocabulary_
        cache = self._word_columns
        if len(cache) > self.MAX_CACHED_WORDS:
            cache.clear()
        rows: List[List[int]] = []
        for text in texts:
            columns: List[int] = []
            # The same words sklearn's char_wb analyzer splits the preprocessed text into.
            for word in preprocess(vectorizer.decode(text)).split():
                found = cache.get(word)
                if found is None:
                    grams = vectorizer._char_wb_ngrams(word)
                    found = cache[word] = [vocabulary[gram] for gram in grams if gram in vocabulary]
                columns.extend(found)
            rows.append(columns)
        return rows

    def _built(self, vectorizer: TfidfVectorizer, kind: str, build: Any) -> Any:
        """The vectorizer's preprocessor or analyzer, built once (sklearn builds a new one per call)."""
        key = (id(vectorizer), kind)
        found = self._functions.get(key)
        if found is None:
            found = self._functions[key] = build()
        return found

    def _analyzer_columns(self, vectorizer: TfidfVectorizer, texts: List[str]) -> List[List[int]]:
        """Vocabulary columns of the vectorizer's own analyzer output (what its `transform` counts)."""
        analyze = self._built(vectorizer, "analyzer", vectorizer.build_analyzer)
        get = vectorizer.vocabulary_.get
        rows = []
        for text in texts:
            found = [get(feature) for feature in analyze(text)]
            rows.append([column for column in found if column is not None])
        return rows

    def _counts_to_tfidf(self, vectorizer: TfidfVectorizer, rows: List[List[int]]) -> sparse.csr_matrix:
        """sklearn's count matrix and TF-IDF weighting, built with a few numpy calls per batch."""
        width = len(vectorizer.vocabulary_)
        lengths = np.fromiter((len(columns) for columns in rows), dtype=np.int64, count=len(rows))
        columns = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=int(lengths.sum()))
        row_ids = np.repeat(np.arange(len(rows)), lengths)
        tfidf: Any = vectorizer._tfidf
        if not (tfidf.use_idf and tfidf.sublinear_tf and tfidf.norm == "l2"):
            counts = sparse.csr_matrix(
                (np.ones(len(columns), dtype=vectorizer.dtype), (row_ids, columns)), shape=(len(rows), width)
            )
            counts.sum_duplicates()  # also sorts the columns, as sklearn's count matrix is
            return tfidf.transform(counts, copy=False)
        # The same arithmetic as TfidfTransformer.transform: 1 + log(tf), times idf, rows to unit length.
        # Its idf step is a sparse product that leaves each row's columns in DESCENDING order, and the
        # row norms (and the model's dot products) add up in stored order, so the rows are built that way:
        # one key per (row, reversed column), counted with one sort.
        keys, counts = np.unique(row_ids * width + (width - 1 - columns), return_counts=True)
        indptr = np.concatenate(([0], np.cumsum(np.bincount(keys // width, minlength=len(rows)))))
        indices = (width - 1 - keys % width).astype(np.int32)
        data = np.log(counts.astype(np.float64)) + 1
        idf = self._idf_of(vectorizer)
        data *= idf[indices]
        matrix = sparse.csr_matrix((data, indices, indptr.astype(np.int32)), shape=(len(rows), width))
        return normalize(matrix, norm="l2", copy=False)


def _hstack_rows(blocks: List[Any]) -> sparse.csr_matrix:
    """`sparse.hstack(blocks).tocsr()` for CSR blocks (each row: block 1's entries, then block 2's …)."""
    blocks = [sparse.csr_matrix(block) for block in blocks]
    indptr = np.sum([block.indptr for block in blocks], axis=0)
    size = int(indptr[-1])
    data = np.empty(size, dtype=np.result_type(*[block.dtype for block in blocks]))
    indices = np.empty(size, dtype=np.int64)
    offset_in_row = indptr[:-1].copy()
    first_column = 0
    for block in blocks:
        per_row = np.diff(block.indptr)
        # Where each stored value of this block goes: its row's start plus its place in the row.
        target = np.arange(block.nnz) - np.repeat(block.indptr[:-1], per_row) + np.repeat(offset_in_row, per_row)
        data[target] = block.data
        indices[target] = block.indices + first_column
        offset_in_row += per_row
        first_column += block.shape[1]
    return sparse.csr_matrix((data, indices, indptr), shape=(blocks[0].shape[0], first_column))


def _plain_tfidf(vectorizer: Any) -> bool:
    """A word/char TF-IDF vectorizer whose `transform` just counts its analyzer's features."""
    return (
        isinstance(vectorizer, TfidfVectorizer)
        and vectorizer.analyzer in ("word", "char", "char_wb")
        and not vectorizer.binary
        and vectorizer.input == "content"
    )


def _sublinear_l2(vectorizer: Any) -> bool:
    tfidf = getattr(vectorizer, "_tfidf", None)
    return bool(tfidf is not None and tfidf.use_idf and tfidf.sublinear_tf and tfidf.norm == "l2")


def _char_wb(vectorizer: Any) -> bool:
    return (
        isinstance(vectorizer, TfidfVectorizer)
        and vectorizer.analyzer == "char_wb"
        and not vectorizer.binary
        and vectorizer.input == "content"
    )


class _OneLevel:
    """Stands in for the level model when the training data has a single risk level."""

    def __init__(self, level: str) -> None:
        self.level = level

    def predict(self, matrix: object) -> List[str]:
        return [self.level] * int(getattr(matrix, "shape", (0,))[0])
