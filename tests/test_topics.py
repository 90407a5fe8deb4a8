"""Topic labels, the clarifying question's buttons, and 'every answer has a next step'."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Dict, List

import yaml
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.nlg import CLARIFY_RESPONSE, PracticeNLG
from bot.topics import load_topics

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = Domain.load(str(ROOT / "domain.yml"))
CONTENT_RULE_FILES = ("therapy_options", "comparisons", "getting_started", "opening_up", "loved_ones", "understanding")


def ranking(*pairs: tuple[str, float]) -> List[Dict[str, Any]]:
    return [{"name": name, "confidence": confidence} for name, confidence in pairs]


def test_suggestions_follow_the_ranking_and_skip_fallback_risk_and_unlabelled_intents() -> None:
    topics = load_topics()
    buttons = topics.suggestion_buttons(
        ranking(("nlu_fallback", 0.3), ("ask_dbt", 0.2), ("risk_acute", 0.15), ("greet", 0.1),
                ("ask_cbt", 0.08), ("out_of_scope", 0.05), ("ask_cost", 0.04), ("ask_insurance", 0.03))
    )
    assert buttons == [
        {"title": topics.labels["ask_dbt"], "payload": "/ask_dbt"},
        {"title": topics.labels["ask_cbt"], "payload": "/ask_cbt"},
        {"title": topics.labels["ask_cost"], "payload": "/ask_cost"},
    ]


def tracker_after(text: str, intent_ranking: List[Dict[str, Any]]) -> DialogueStateTracker:
    tracker = DialogueStateTracker("someone", DOMAIN.slots)
    top = intent_ranking[0]
    tracker.update(UserUttered(text, intent=top, parse_data={"intent": top, "intent_ranking": intent_ranking}))
    return tracker


def test_clarifying_question_offers_the_likeliest_topics_then_its_own_buttons() -> None:
    nlg = PracticeNLG(domain=DOMAIN)
    tracker = tracker_after(
        "dbt or something", ranking(("nlu_fallback", 0.25), ("ask_dbt", 0.21), ("compare_cbt_dbt", 0.2))
    )
    response = asyncio.run(nlg.generate(CLARIFY_RESPONSE, tracker, "rest"))
    assert response is not None
    payloads = [button["payload"] for button in response["buttons"]]
    assert payloads[:2] == ["/ask_dbt", "/compare_cbt_dbt"]
    assert payloads[-1] == "/deny"  # "None of these" from domain.yml stays last


def test_other_responses_get_no_suggestions() -> None:
    nlg = PracticeNLG(domain=DOMAIN)
    tracker = tracker_after("dbt", ranking(("ask_dbt", 0.9), ("ask_cbt", 0.05)))
    response = asyncio.run(nlg.generate("utter_dbt", tracker, "rest"))
    assert response is not None
    assert "/ask_cbt" not in [button["payload"] for button in response["buttons"]]


def answers_of_content_rules() -> List[str]:
    return sorted(
        {
            rule["steps"][-1]["action"]
            for name in CONTENT_RULE_FILES
            for rule in yaml.safe_load((ROOT / "data" / "rules" / f"{name}.yml").read_text())["rules"]
        }
    )


def test_every_topic_answer_offers_a_next_step() -> None:
    answers = answers_of_content_rules()
    assert len(answers) > 40
    for action in answers:
        for variation in DOMAIN.responses[action]:
            assert variation.get("buttons"), f"{action} has no next step"


def test_every_button_payload_is_a_known_intent() -> None:
    for name, variations in DOMAIN.responses.items():
        for variation in variations:
            for button in variation.get("buttons", []):
                if not button["payload"].startswith("/"):
                    continue  # a plain-text answer inside a form (e.g. "for my child")
                intent = button["payload"][1:].split("{")[0]
                assert intent in DOMAIN.intents, f"{name}: {button['payload']}"


def test_every_labelled_topic_has_an_answer_rule() -> None:
    answered = set()
    for path in (ROOT / "data" / "rules").glob("*.yml"):
        for rule in yaml.safe_load(path.read_text())["rules"]:
            if "intent" in rule["steps"][0]:
                answered.add(rule["steps"][0]["intent"])
    assert set(load_topics().labels) <= answered


def test_emergency_answers_give_911_and_988() -> None:
    nlg = PracticeNLG(domain=DOMAIN)
    for action in ("utter_when_emergency", "utter_loved_one_first_steps", "utter_fallback_offer_person"):
        text = nlg.generate_from_slots(action, {}, "rest")["text"]  # type: ignore[index]
        assert "911" in text and "988" in text, action


def test_confidentiality_answer_explains_limits_instead_of_promising_secrecy() -> None:
    text = DOMAIN.responses["utter_opening_up_confidentiality"][0]["text"]
    assert "limits" in text and "danger" in text
