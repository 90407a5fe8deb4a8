"""Topic areas and button labels (data/topics.yml): shared by the clarifying question and the NLU report."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence

import yaml

from bot.settings import PROJECT_ROOT

TOPICS_FILE = PROJECT_ROOT / "data" / "topics.yml"
# Intents that are never worth suggesting back to the person, even if they rank high.
NEVER_SUGGESTED = frozenset({"nlu_fallback", "out_of_scope", "risk_imminent", "risk_acute", "risk_concern"})


@dataclass(frozen=True)
class Topics:
    areas: Dict[str, List[str]]
    labels: Dict[str, str]

    def area_of(self, intent: str) -> str:
        for area, intents in self.areas.items():
            if intent in intents:
                return area
        return "other"

    def suggestion_buttons(self, intent_ranking: Sequence[Mapping[str, Any]], limit: int = 3) -> List[Dict[str, str]]:
        """Buttons for the likeliest labelled intents, best first (the ranking comes from the NLU parse)."""
        buttons: List[Dict[str, str]] = []
        for candidate in intent_ranking:
            name = str(candidate.get("name", ""))
            if name in NEVER_SUGGESTED or name not in self.labels:
                continue
            buttons.append({"title": self.labels[name], "payload": f"/{name}"})
            if len(buttons) == limit:
                break
        return buttons


def load_topics(path: Path = TOPICS_FILE) -> Topics:
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    areas = {str(area): [str(name) for name in names] for area, names in (document.get("areas") or {}).items()}
    labels = {str(name): str(label) for name, label in (document.get("labels") or {}).items()}
    return Topics(areas=areas, labels=labels)


@lru_cache(maxsize=1)
def topics() -> Topics:
    """Loaded once per process."""
    return load_topics()
