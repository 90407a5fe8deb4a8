"""The reply Rasa gives when a custom action or form fails (bot/ops/action_failures.py), in process."""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List

import pytest
from rasa.core.actions.action import ActionExecutionRejection
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, FollowupAction, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.ops.action_failures import FAILED_ACTION_RESPONSE, _GuardedAction

DOMAIN = Domain.from_dict(
    {
        "slots": {
            name: {"type": "any", "mappings": [{"type": "custom"}]}
            for name in ("intake_name", "intake_state", "intake_age")
        },
        "responses": {FAILED_ACTION_RESPONSE: [{"text": "Sorry, please try again or call us."}]},
    }
)


class Channel:
    @staticmethod
    def name() -> str:
        return "rest"


class TemplateNLG:
    def __init__(self) -> None:
        self.asked: List[str] = []

    async def generate(self, response: str, tracker: Any, channel: str) -> Dict[str, Any] | None:
        self.asked.append(response)
        variations = DOMAIN.responses.get(response)
        return dict(variations[0]) if variations else None


class Failing:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def name(self) -> str:
        return "validate_intake_form"

    async def run(self, *args: Any) -> List[Any]:
        raise self.error


def mid_form_tracker() -> DialogueStateTracker:
    """Name and age answered earlier; this turn's message filled the state (and, wrongly, the name)."""
    events = [
        SlotSet("intake_name", "Maria Lopez"), SlotSet("intake_age", 34), ActionExecuted("action_listen"),
        UserUttered("NY"), SlotSet("intake_state", "NY"), SlotSet("intake_name", "NY"),
    ]
    return DialogueStateTracker.from_events("v1", events, slots=DOMAIN.slots)


def run_guarded(error: Exception) -> List[Any]:
    return asyncio.run(_GuardedAction(Failing(error)).run(Channel(), TemplateNLG(), mid_form_tracker(), DOMAIN))


def test_a_timeout_becomes_the_reply_the_restored_answers_and_the_end_of_the_turn() -> None:
    events = run_guarded(asyncio.TimeoutError())
    reply, *restored, follow = events
    assert isinstance(reply, BotUttered) and reply.text == "Sorry, please try again or call us."
    assert sorted((event.key, event.value) for event in restored) == [
        ("intake_name", "Maria Lopez"), ("intake_state", None),  # earlier answers kept, this one undone
    ]
    assert all(isinstance(event, SlotSet) for event in restored)
    assert follow == FollowupAction("action_listen")


def test_any_other_failure_is_answered_the_same_way() -> None:
    assert isinstance(run_guarded(RuntimeError("action server answered 500"))[0], BotUttered)


def test_a_rejection_is_not_a_failure() -> None:
    """"That message was not an answer for me": Rasa's policies decide what happens next, as before."""
    with pytest.raises(ActionExecutionRejection):
        run_guarded(ActionExecutionRejection("intake_form"))


def test_the_guard_keeps_the_actions_name_and_successful_results() -> None:
    class Working(Failing):
        async def run(self, *args: Any) -> List[Any]:
            return [SlotSet("intake_state", "New York")]

    guarded = _GuardedAction(Working(RuntimeError()))
    assert guarded.name() == "validate_intake_form"
    events = asyncio.run(guarded.run(Channel(), TemplateNLG(), mid_form_tracker(), DOMAIN))
    assert events == [SlotSet("intake_state", "New York")]
