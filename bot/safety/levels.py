"""Risk levels and the assessment every message gets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List

LEVELS = ("none", "concern", "acute", "imminent")
RISK_INTENTS = {"concern": "risk_concern", "acute": "risk_acute", "imminent": "risk_imminent"}


def rank(level: str) -> int:
    return LEVELS.index(level)


def highest(*levels: str) -> str:
    return max(levels, key=rank, default="none")


@dataclass
class Assessment:
    """What the detector concluded about one message, and why."""

    level: str = "none"
    score: float = 0.0
    reasons: List[str] = field(default_factory=list)
    categories: List[str] = field(default_factory=list)
    # Which crisis line variation fits (child_abuse, eating_disorder, third_party, general …).
    topic: str = "general"
    # A method-adjacent message (pesticides, tall bridges): risk only after an earlier risk turn.
    means_adjacent: bool = False

    @property
    def is_risk(self) -> bool:
        return self.level != "none"

    def as_dict(self) -> Dict[str, Any]:
        return {
            "level": self.level,
            "score": round(self.score, 4),
            "reasons": list(self.reasons),
            "categories": list(self.categories),
            "topic": self.topic,
            "means_adjacent": self.means_adjacent,
        }
