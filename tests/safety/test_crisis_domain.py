"""Crisis replies, crisis rules and forms: the safety guarantees that live in domain.yml and data/."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml
from rasa.shared.core.domain import Domain

from bot.nlg import PracticeNLG
from bot.settings import practice

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = Domain.load(str(ROOT / "domain.yml"))
RISK_INTENTS = ("risk_imminent", "risk_acute", "risk_concern")
TOPICS = ["general", "third_party", "child_abuse", "sexual_assault", "domestic_abuse", "eating_disorder", "lgbtq",
          "veteran"]


def rendered(response: str, topic: str) -> List[Dict[str, Any]]:
    """Every variation Rasa could pick for this response with risk_topic = topic, filled in."""
    nlg = PracticeNLG(domain=DOMAIN)
    variations = nlg.responses[response]
    matching = [v for v in variations if any(c["value"] == topic for c in v.get("condition", []))]
    candidates = matching or [v for v in variations if not v.get("condition")]
    return [nlg._fill_response(dict(v), {"risk_topic": topic}) for v in candidates]


def all_crisis_variations() -> List[Any]:
    names = ("utter_risk_imminent", "utter_risk_acute", "utter_risk_concern")
    return [(name, topic) for name in names for topic in TOPICS]


@pytest.mark.parametrize(("response", "topic"), all_crisis_variations())
def test_every_crisis_reply_has_the_essentials(response: str, topic: str) -> None:
    facts = practice().crisis
    for variation in rendered(response, topic):
        text = variation["text"]
        assert "{" not in text, text
        assert facts["lifeline_number"] in text and facts["emergency_number"] in text
        assert facts["lifeline_chat"] in text or "text" in text  # call, text and chat
        assert "automated" in text
        assert practice().phone in text and practice().hours.describe() in text
        assert {"title": "Talk to a person", "payload": "/request_human"} in variation["buttons"]
        assert not re.search(r"\b(secret|won't tell|between us)\b", text, re.I)


@pytest.mark.parametrize("topic", TOPICS)
def test_imminent_reply_puts_911_first_and_stays_short(topic: str) -> None:
    facts = practice().crisis
    for variation in rendered("utter_risk_imminent", topic):
        text = variation["text"]
        assert text.index(facts["emergency_number"]) < text.index(facts["lifeline_number"])
        assert len(text.split()) <= 70


@pytest.mark.parametrize(
    ("topic", "fact"),
    [
        ("child_abuse", "child_abuse_phone"),
        ("sexual_assault", "sexual_assault_phone"),
        ("domestic_abuse", "domestic_violence_phone"),
        ("eating_disorder", "eating_disorder_phone"),
        ("lgbtq", "trevor_phone"),
        ("veteran", "lifeline_veterans"),
    ],
)
def test_topic_replies_add_their_line(topic: str, fact: str) -> None:
    for response in ("utter_risk_acute", "utter_risk_concern"):
        for variation in rendered(response, topic):
            assert practice().crisis[fact] in variation["text"], (response, topic)


def test_third_party_concern_explains_how_to_help() -> None:
    text = rendered("utter_risk_concern", "third_party")[0]["text"]
    assert "Ask them" in text and "stay with them" in text


def load_rules() -> List[Dict[str, Any]]:
    rules: List[Dict[str, Any]] = []
    for path in (ROOT / "data" / "rules").glob("*.yml"):
        rules.extend(yaml.safe_load(path.read_text()).get("rules") or [])
    return rules


def test_each_risk_intent_has_a_crisis_rule_with_no_custom_action_first() -> None:
    rules = load_rules()
    for intent in RISK_INTENTS:
        matching = [r for r in rules if r["steps"][0].get("intent") == intent and not r.get("condition")]
        assert matching, intent
        first_action = next(step["action"] for step in matching[0]["steps"] if "action" in step)
        assert first_action == f"utter_{intent}"


def test_sticky_risk_is_wired_through_a_slot_and_a_rule() -> None:
    slot = next(slot for slot in DOMAIN.slots if slot.name == "risk_flagged")
    assert slot.influence_conversation and slot.initial_value is False
    assert {tuple(m.get("intent")) for m in slot.mappings if m["type"] == "from_intent"} == {RISK_INTENTS}
    sticky = [r for r in load_rules() if r["steps"][0].get("intent") == "means_adjacent"]
    flagged = [r for r in sticky if r.get("condition") == [{"slot_was_set": [{"risk_flagged": True}]}]]
    assert flagged and flagged[0]["steps"][1]["action"] == "utter_risk_acute"


def test_safety_component_is_last_in_the_pipeline() -> None:
    pipeline = yaml.safe_load((ROOT / "config.yml").read_text())["pipeline"]
    assert pipeline[-1]["name"] == "bot.safety.component.SafetyClassifier"
    assert [c["name"] for c in pipeline].index("FallbackClassifier") == len(pipeline) - 2


def crisis_rule_for(rules: List[Dict[str, Any]], form: str, intent: str) -> bool:
    expected = [{"intent": intent}, {"action": f"utter_{intent}"}, {"action": "action_deactivate_loop"},
                {"active_loop": None}]
    return any(r.get("condition") == [{"active_loop": form}] and r["steps"] == expected for r in rules)


def forms_in(domain_document: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    return domain_document.get("forms") or {}


def form_problems(domain_document: Dict[str, Any], rules: List[Dict[str, Any]]) -> List[str]:
    problems = []
    for form, spec in forms_in(domain_document).items():
        ignored = set((spec or {}).get("ignored_intents") or [])
        problems += [f"{form}: {i} not in ignored_intents" for i in RISK_INTENTS if i not in ignored]
        problems += [f"{form}: no crisis rule for {i}" for i in RISK_INTENTS if not crisis_rule_for(rules, form, i)]
    return problems


def test_every_form_ignores_the_risk_intents_and_has_crisis_rules() -> None:
    """Mid-form crisis guarantee: holds for every form in domain.yml, however many there are."""
    document = yaml.safe_load((ROOT / "domain.yml").read_text())
    assert form_problems(document, load_rules()) == []


def test_the_form_check_catches_a_form_without_the_guarantee() -> None:
    """The check above is not vacuous: a form missing either half is reported."""
    document = {"forms": {"intake_form": {"ignored_intents": ["risk_acute"], "required_slots": ["name"]}}}
    rules = [
        {"rule": "x", "condition": [{"active_loop": "intake_form"}],
         "steps": [{"intent": "risk_acute"}, {"action": "utter_risk_acute"}, {"action": "action_deactivate_loop"},
                   {"active_loop": None}]}
    ]
    problems = form_problems(document, rules)
    assert "intake_form: risk_imminent not in ignored_intents" in problems
    assert "intake_form: no crisis rule for risk_concern" in problems
    assert not any("risk_acute" in problem for problem in problems)
