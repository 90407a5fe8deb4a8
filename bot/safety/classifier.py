"""A small trained risk classifier: word + character n-grams into a logistic regression.

Trained from the team's labelled examples (data/safety/examples) plus the NLU training data during
`rasa train`; persisted inside the Rasa model. Its score is P(level != none).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from bot.safety.levels import LEVELS

DEFAULT_THRESHOLD = 0.8
MODEL_FILE = "risk_classifier.pkl"


def build_pipeline(random_state: int = 7) -> Pipeline:
    features = FeatureUnion(
        [
            ("words", TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True)),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), min_df=2, sublinear_tf=True)),
        ]
    )
    model = LogisticRegression(C=8.0, class_weight="balanced", max_iter=2000, random_state=random_state)
    return Pipeline([("features", features), ("model", model)])


@dataclass
class Prediction:
    risk_probability: float
    level: str


class RiskClassifier:
    """Wraps the fitted pipeline; texts must already be normalized (bot.safety.normalize)."""

    def __init__(self, pipeline: Pipeline, threshold: float = DEFAULT_THRESHOLD) -> None:
        self.pipeline = pipeline
        self.threshold = threshold
        classes = list(pipeline.classes_)
        self._none_index = classes.index("none")
        self._risk_columns: List[Tuple[int, str]] = [(i, c) for i, c in enumerate(classes) if c != "none"]

    @classmethod
    def train(cls, texts: Sequence[str], levels: Sequence[str], threshold: float = DEFAULT_THRESHOLD) -> RiskClassifier:
        unknown = set(levels) - set(LEVELS)
        if unknown:
            raise ValueError(f"unknown levels in training data: {unknown}")
        if "none" not in levels or len(set(levels)) < 2:
            raise ValueError("the risk classifier needs examples of `none` and of at least one risk level")
        pipeline = build_pipeline()
        pipeline.fit(list(texts), list(levels))
        return cls(pipeline, threshold)

    def predict(self, normalized_texts: Sequence[str]) -> List[Prediction]:
        if not normalized_texts:
            return []
        probabilities = self.pipeline.predict_proba(list(normalized_texts))
        predictions = []
        for row in probabilities:
            risk = float(1.0 - row[self._none_index])
            level = "none"
            if risk >= self.threshold:
                _index, level = max(self._risk_columns, key=lambda column: row[column[0]])
            predictions.append(Prediction(risk, level))
        return predictions

    def risk_probabilities(self, normalized_texts: Sequence[str]) -> np.ndarray:
        return 1.0 - self.pipeline.predict_proba(list(normalized_texts))[:, self._none_index]

    def save(self, directory: Path) -> None:
        with open(directory / MODEL_FILE, "wb") as handle:
            pickle.dump({"pipeline": self.pipeline, "threshold": self.threshold}, handle)

    @classmethod
    def load(cls, directory: Path) -> RiskClassifier:
        # Only ever loads the file this project wrote into its own trained model.
        with open(directory / MODEL_FILE, "rb") as handle:
            stored = pickle.load(handle)
        return cls(stored["pipeline"], stored["threshold"])
