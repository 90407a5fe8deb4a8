"""Content with the trained model: NLU targets on held-out paraphrases, flows, and a fallback that works
without the action server."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List

import pytest
from rasa.core.agent import Agent
from rasa.utils.endpoints import EndpointConfig

from bot.nlu_confidence import classifier_guess, eval_examples
from bot.nlu_report import OVERALL_TARGET, PER_INTENT_FLOOR, IntentScore, Report
from bot.topics import topics

pytestmark = pytest.mark.e2e

MODEL = Path(__file__).resolve().parents[2] / "models" / "assistant.tar.gz"


def dead_action_server_url() -> str:
    """A local port with nothing listening: every custom action call fails at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/webhook"


@pytest.fixture(scope="module")
def agent() -> Agent:
    return Agent.load(
        str(MODEL),
        generator=EndpointConfig(type="bot.nlg.PracticeNLG"),
        action_endpoint=EndpointConfig(url=dead_action_server_url()),
    )


def talk(agent: Agent, sender: str, text: str) -> List[Dict[str, Any]]:
    return asyncio.run(agent.handle_text(text, sender_id=sender)) or []


def test_held_out_paraphrases_meet_the_accuracy_targets(agent: Agent) -> None:
    outcomes: Dict[str, List[bool]] = defaultdict(list)
    for text, expected in eval_examples():
        predicted, _ = classifier_guess(asyncio.run(agent.parse_message(text)))
        outcomes[expected].append(predicted == expected)
    report = Report(
        [
            IntentScore(intent, topics().area_of(intent), sum(hits), len(hits), {})
            for intent, hits in outcomes.items()
        ]
    )
    assert report.overall >= OVERALL_TARGET
    assert [score.intent for score in report.scores if score.accuracy < PER_INTENT_FLOOR] == []


def test_nonsense_twice_asks_then_offers_a_person_even_with_the_action_server_down(agent: Agent) -> None:
    sender = f"fallback-{uuid.uuid4()}"
    nonsense = "flurb zaxxon quibble"
    assert asyncio.run(agent.parse_message(nonsense))["intent"]["name"] == "nlu_fallback"
    first = talk(agent, sender, nonsense)
    assert "Did you mean one of these?" in first[0]["text"]
    assert len(first[0]["buttons"]) >= 2  # likeliest topics + "None of these"
    second = talk(agent, sender, nonsense)
    text = " ".join(reply.get("text", "") for reply in second)
    assert "intake team" in text and "988" in text and "911" in text


def test_opening_up_flow_moves_on_with_yes(agent: Agent) -> None:
    sender = f"opening-{uuid.uuid4()}"
    # Self-harm disclosed while seeking help is a concern for the safety component: the crisis lines come
    # first, with a button that continues into the opening-up flow.
    start = talk(agent, sender, "I'm scared to tell my therapist that I self-harm")
    assert "988" in start[0]["text"]
    assert {"title": "Telling my therapist", "payload": "/ask_opening_up"} in start[0]["buttons"]
    assert "write it down" in talk(agent, sender, "/ask_opening_up")[0]["text"]
    assert "at your own pace" in talk(agent, sender, "ok")[0]["text"]
    assert "There's something I've been scared to tell you" in talk(agent, sender, "yes")[0]["text"]


def test_parent_flow_reaches_the_emergency_step_with_911_and_988(agent: Agent) -> None:
    sender = f"parent-{uuid.uuid4()}"
    # A child who self-harms is a third party at risk: the concern reply explains how to help, then the
    # parent flow continues from its button.
    first = talk(agent, sender, "I just found out my son has been cutting himself, what do I do")
    assert "988" in first[0]["text"]
    assert {"title": "How to help them", "payload": "/ask_loved_one_self_harms"} in first[0]["buttons"]
    assert "stay calm" in talk(agent, sender, "/ask_loved_one_self_harms")[0]["text"]
    emergency = talk(agent, sender, "/ask_when_emergency")[0]["text"]
    assert "911" in emergency and "988" in emergency
