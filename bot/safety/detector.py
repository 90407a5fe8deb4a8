"""One detector = rules + classifier. Used by the Rasa component and by `python -m bot.safety`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Mapping, Sequence

from bot.safety.classifier import RiskClassifier
from bot.safety.levels import Assessment, highest, rank
from bot.safety.normalize import Normalizer
from bot.safety.rules import RuleResult, RuleSet, rule_assessment

# A message the rules call method-adjacent ("where can I buy pesticides") and nothing more is answered
# by the sticky-risk rules (a crisis reply after an earlier risk turn, a refusal naming 988/911
# otherwise); the classifier alone raises it only when it is this sure (README, "Threshold").
MEANS_ADJACENT_THRESHOLD = 0.95


def classifier_may_raise(rule_level: str, means_adjacent: bool, risk_probability: float) -> bool:
    return rule_level != "none" or not means_adjacent or risk_probability >= MEANS_ADJACENT_THRESHOLD


@dataclass(frozen=True)
class RulesVerdict:
    """What the rules made of one text: its normalized form (the classifier's input) and their result."""

    normalized: str
    result: RuleResult


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

    def rules_verdicts(self, texts: Sequence[str]) -> List[RulesVerdict]:
        """The rules' part of each assessment: the normalized text and the rules' result."""
        normalized = [self.rules.normalize(text or "") for text in texts]
        results = self.rules.assess_docs(self.rules.docs(normalized))
        return [RulesVerdict(text, result) for text, result in zip(normalized, results, strict=True)]

    def assess_many(self, texts: Sequence[str], known: Mapping[str, RulesVerdict] | None = None) -> List[Assessment]:
        """`known`: rules' verdicts already computed for some of these exact texts (see bot/ops/priority.py)."""
        known = known or {}
        missing = list(dict.fromkeys(text for text in texts if text not in known))
        computed = dict(zip(missing, self.rules_verdicts(missing), strict=True))
        verdicts = [known[text] if text in known else computed[text] for text in texts]
        normalized = [verdict.normalized for verdict in verdicts]
        assessments = [rule_assessment(verdict.result) for verdict in verdicts]
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
