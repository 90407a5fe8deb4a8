"""Top-1 intent accuracy per intent, per topic area and overall, from `rasa test nlu` results.

Usage: python -m bot.nlu_report results/nlu_eval [--areas-only]
(reads intent_report.json written by rasa test nlu). Exit code 1 when the targets are missed, so
`make nlu-eval` fails loudly; --areas-only prints per-area and overall figures and never fails.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List

from bot.topics import Topics, topics

OVERALL_TARGET = 0.95
PER_INTENT_FLOOR = 0.85
# Keys in intent_report.json that are summaries, not intents.
SUMMARY_KEYS = frozenset({"accuracy", "macro avg", "weighted avg", "micro avg"})


@dataclass(frozen=True)
class IntentScore:
    intent: str
    area: str
    correct: int
    total: int
    confused_with: Dict[str, int]

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0


@dataclass(frozen=True)
class Report:
    scores: List[IntentScore]

    @property
    def overall(self) -> float:
        total = sum(score.total for score in self.scores)
        return sum(score.correct for score in self.scores) / total if total else 0.0

    def area_accuracy(self, area: str) -> float:
        members = [score for score in self.scores if score.area == area]
        total = sum(score.total for score in members)
        return sum(score.correct for score in members) / total if total else 0.0

    @property
    def below_floor(self) -> List[IntentScore]:
        return [score for score in self.scores if score.accuracy < PER_INTENT_FLOOR]

    @property
    def meets_targets(self) -> bool:
        return self.overall >= OVERALL_TARGET and not self.below_floor


def load_report(results_dir: Path, topic_map: Topics | None = None) -> Report:
    """Per-intent recall (= top-1 accuracy on that intent's examples) from Rasa's intent report."""
    topic_map = topic_map or topics()
    raw: Dict[str, Any] = json.loads((results_dir / "intent_report.json").read_text(encoding="utf-8"))
    scores = []
    for intent, row in raw.items():
        if intent in SUMMARY_KEYS or not isinstance(row, dict) or not row.get("support"):
            continue  # labels only ever predicted (e.g. nlu_fallback) have no examples of their own
        total = int(row["support"])
        scores.append(
            IntentScore(
                intent=intent,
                area=topic_map.area_of(intent),
                correct=round(float(row["recall"]) * total),
                total=total,
                confused_with={str(k): int(v) for k, v in (row.get("confused_with") or {}).items()},
            )
        )
    return Report(sorted(scores, key=lambda score: (score.area, score.intent)))


def format_report(report: Report, areas_only: bool = False) -> str:
    lines = [f"{'topic area / intent':44} {'top-1':>7} {'n':>4}  confused with"]
    for area in dict.fromkeys(score.area for score in report.scores):
        members = [score for score in report.scores if score.area == area]
        lines.append(f"{area:44} {report.area_accuracy(area):7.1%} {sum(s.total for s in members):4}")
        for score in [] if areas_only else members:
            flag = "  <-- below floor" if score.accuracy < PER_INTENT_FLOOR else ""
            confused = ", ".join(f"{name} x{count}" for name, count in score.confused_with.items())
            lines.append(f"  {score.intent:42} {score.accuracy:7.1%} {score.total:4}  {confused}{flag}")
    lines.append(
        f"{'OVERALL':44} {report.overall:7.1%} {sum(s.total for s in report.scores):4}"
        f"  (target >= {OVERALL_TARGET:.0%}, every intent >= {PER_INTENT_FLOOR:.0%})"
    )
    if not areas_only:
        lines.append("targets met" if report.meets_targets else "TARGETS MISSED")
    return "\n".join(lines)


def main(argv: List[str]) -> int:
    arguments = [arg for arg in argv[1:] if not arg.startswith("--")]
    areas_only = "--areas-only" in argv
    report = load_report(Path(arguments[0] if arguments else "results/nlu_eval"))
    print(format_report(report, areas_only))
    return 0 if areas_only or report.meets_targets else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
