"""One detector = rules + classifier. Used by the Rasa component and by `python -m bot.safety`."""

from __future__ import annotations

from typing import List, Sequence

from bot.safety.classifier import RiskClassifier
from bot.safety.levels import Assessment, highest, rank
from bot.safety.normalize import Normalizer
from bot.safety.rules import RuleSet, rule_assessment

# A message the rules call method-adjacent ("where can I buy pesticides") and nothing more is answered
# by the sticky-risk rules (a crisis reply after an earlier risk turn, a refusal naming 988/911
# otherwise); the classifier alone raises it only when it is this sure (README, "Threshold").
MEANS_ADJACENT_THRESHOLD = 0.95


def classifier_may_raise(rule_level: str, means_adjacent: bool, risk_probability: float) -> bool:
    return rule_level != "none" or not means_adjacent or risk_probability >= MEANS_ADJACENT_THRESHOLD


class SafetyDetector:
    def __init__(self, rules: RuleSet, classifier: RiskClassifier | None = None) -> None:
        self.rules = rules
        self.classifier = classifier

    @classmethod
    def from_documents(cls, documents: dict, classifier: RiskClassifier | None = None) -> SafetyDetector:
        normalizer = Normalizer.from_dict(documents["normalize"])
        return cls(RuleSet(documents["rules"], normalizer), classifier)

    def assess(self, text: str) -> Assessment:
        return self.assess_many([text])[0]

    def assess_many(self, texts: Sequence[str]) -> List[Assessment]:
        normalized = [self.rules.normalize(text or "") for text in texts]
        docs = self.rules.docs(normalized)
        assessments = [rule_assessment(result) for result in self.rules.assess_docs(docs)]
        if self.classifier is not None:
            for assessment, prediction in zip(assessments, self.classifier.predict(normalized), strict=True):
                assessment.reasons.append(f"classifier:p_risk={prediction.risk_probability:.3f}")
                assessment.score = max(assessment.score, prediction.risk_probability)
                if rank(prediction.level) > rank(assessment.level) and not classifier_may_raise(
                    assessment.level, assessment.means_adjacent, prediction.risk_probability
                ):
                    assessment.reasons.append("classifier:held:means_adjacent")
                elif rank(prediction.level) > rank(assessment.level):
                    # The union: the classifier may raise the level, never lower what the rules found.
                    assessment.reasons.append(f"classifier:raised:{assessment.level}->{prediction.level}")
                    if assessment.level == "none":
                        assessment.categories.append("classifier")
                    assessment.level = highest(assessment.level, prediction.level)
        return assessments
