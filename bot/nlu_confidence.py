"""How the fallback threshold trades clarifying questions on real questions against nonsense caught.

Usage: python -m bot.nlu_confidence MODEL.tar.gz
Parses the held-out paraphrases (tests/nlu_eval/paraphrases.yml) and the nonsense list
(tests/nlu_eval/nonsense.yml) with the trained model, then prints, per threshold, the share of real
questions that would get a clarifying question and the share of nonsense that would be caught.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Sequence

import yaml

from bot.safety.component import ORIGINAL_RANKING_KEY
from bot.settings import PROJECT_ROOT

EVAL_DIR = PROJECT_ROOT / "tests" / "nlu_eval"
THRESHOLDS = (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)
FALLBACK = "nlu_fallback"
OUT_OF_SCOPE = "out_of_scope"
# Intents that never answer as a topic: out of scope gets a polite refusal; "inform" (answers inside the
# booking form) has no rule outside the form, so the core fallback answers "I didn't understand".
NOT_A_TOPIC = frozenset({OUT_OF_SCOPE, "inform"})


@dataclass(frozen=True)
class Parsed:
    text: str
    expected: str  # "" for nonsense
    intent: str  # the classifier's own top intent (before the fallback classifier)
    confidence: float
    fell_back: bool  # what the configured FallbackClassifier decided


def classifier_guess(parse: Dict[str, Any]) -> tuple[str, float]:
    """The top intent that is not nlu_fallback, i.e. what the intent classifier itself said
    (before the safety component replaced it with a risk intent)."""
    ranking = parse.get(ORIGINAL_RANKING_KEY) or parse.get("intent_ranking") or []
    for candidate in ranking:
        if candidate.get("name") != FALLBACK:
            return str(candidate["name"]), float(candidate["confidence"])
    return FALLBACK, 0.0


def eval_examples() -> List[tuple[str, str]]:
    document = yaml.safe_load((EVAL_DIR / "paraphrases.yml").read_text(encoding="utf-8"))
    return [
        (line.strip()[2:].strip(), str(block["intent"]))
        for block in document["nlu"]
        for line in block["examples"].splitlines()
        if line.strip()
    ]


def nonsense_examples() -> List[str]:
    return [str(text) for text in yaml.safe_load((EVAL_DIR / "nonsense.yml").read_text(encoding="utf-8"))["nonsense"]]


async def parse_all(model: Path, items: Sequence[tuple[str, str]]) -> List[Parsed]:
    import structlog
    from rasa.core.agent import Agent  # heavy import, only when measuring

    # One debug line per parse would drown the table.
    logging.disable(logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    agent = Agent.load(str(model))
    results = []
    for text, expected in items:
        parse = await agent.parse_message(text)
        intent, confidence = classifier_guess(parse)
        results.append(Parsed(text, expected, intent, confidence, parse["intent"]["name"] == FALLBACK))
    return results


def caught(item: Parsed, threshold: float) -> bool:
    return item.confidence < threshold or item.intent in NOT_A_TOPIC


def format_sweep(real: List[Parsed], nonsense: List[Parsed]) -> str:
    in_scope = [item for item in real if item.expected != OUT_OF_SCOPE]
    lines = ["threshold  clarifying question on real questions  nonsense caught"]
    for threshold in THRESHOLDS:
        asked = sum(item.confidence < threshold for item in in_scope) / len(in_scope)
        nonsense_caught = sum(caught(item, threshold) for item in nonsense) / len(nonsense)
        lines.append(f"{threshold:9.2f}  {asked:37.1%}  {nonsense_caught:15.1%}")
    configured_asked = sum(item.fell_back for item in in_scope) / len(in_scope)
    configured_caught = sum(item.fell_back or item.intent in NOT_A_TOPIC for item in nonsense) / len(nonsense)
    lines.append(
        f"configured (config.yml): clarifying on {configured_asked:.1%} of real questions, "
        f"nonsense caught {configured_caught:.1%}"
    )
    missed = [item for item in nonsense if not (item.fell_back or item.intent in NOT_A_TOPIC)]
    lines.extend(f"  nonsense read as {item.intent} ({item.confidence:.2f}): {item.text}" for item in missed)
    return "\n".join(lines)


def main(argv: List[str]) -> int:
    model = Path(argv[1] if len(argv) > 1 else "models/assistant.tar.gz")
    real = asyncio.run(parse_all(model, eval_examples()))
    nonsense = asyncio.run(parse_all(model, [(text, "") for text in nonsense_examples()]))
    print(format_sweep(real, nonsense))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
