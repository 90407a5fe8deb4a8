"""Every response in domain.yml renders with the practice's facts, and the safety wording holds."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List

import yaml
from rasa.shared.core.domain import Domain

from bot.nlg import PracticeNLG
from bot.settings import practice

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = Domain.load(str(ROOT / "domain.yml"))
PLACEHOLDER = re.compile(r"{([^\n{}]+?)}")


def all_texts() -> List[str]:
    texts = []
    for variations in DOMAIN.responses.values():
        for variation in variations:
            texts.append(variation.get("text", ""))
            texts.extend(button["title"] for button in variation.get("buttons", []))
    return texts


def test_every_placeholder_is_a_practice_fact_or_a_slot() -> None:
    known = set(practice().template_values()) | {slot.name for slot in DOMAIN.slots}
    unknown = {name for text in all_texts() for name in PLACEHOLDER.findall(text)} - known
    assert not unknown, f"placeholders with no value: {sorted(unknown)}"


def generate(nlg: PracticeNLG, name: str, slots: Dict[str, Any] | None = None) -> Dict[str, Any]:
    result = nlg.generate_from_slots(name, slots or {}, "rest")
    assert result is not None, name
    return result


def test_practice_facts_are_filled_in() -> None:
    nlg = PracticeNLG(domain=DOMAIN)
    text = generate(nlg, "utter_human_contact")["text"]
    assert practice().phone in text
    assert "{" not in text
    assert "988" in text and "911" in text


def test_slot_values_still_fill_their_placeholders() -> None:
    nlg = PracticeNLG(domain=DOMAIN)
    template = {"text": "Hello {first_name}, call {practice_phone}."}
    filled = nlg._fill_response(dict(template), {"first_name": "Sam"})
    assert filled["text"] == f"Hello Sam, call {practice().phone}."


def test_greeting_discloses_automation_and_the_crisis_line() -> None:
    rules = yaml.safe_load((ROOT / "data" / "rules" / "smalltalk.yml").read_text())["rules"]
    greet_rule = next(rule for rule in rules if rule["steps"][0].get("intent") == "greet")
    actions = [step["action"] for step in greet_rule["steps"] if "action" in step]
    nlg = PracticeNLG(domain=DOMAIN)
    spoken = " ".join(generate(nlg, action)["text"] for action in actions)
    assert "automated assistant" in spoken
    assert "988" in spoken and "911" in spoken


def test_no_response_promises_secrecy() -> None:
    forbidden = re.compile(r"\b(I|we) (will|won't|promise)[^.]*\b(secret|tell anyone|keep this between)", re.IGNORECASE)
    offenders = [text for text in all_texts() if forbidden.search(text)]
    assert not offenders
