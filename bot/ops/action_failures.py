"""A custom action that times out or fails still gets the visitor a reply (issue 8, "no lost turns").

Rasa 3.6 catches any error of a custom action or form (the action server hung past
ACTION_TIMEOUT_SECONDS, refused, answered 500), logs it, drops the action's events and carries on: the
visitor's turn ends with no reply at all. Here the action Rasa is about to run is wrapped so that such
a failure becomes, instead:

- `utter_action_failed` (domain.yml, rendered by Rasa's NLG, so the practice's phone comes from
  data/practice.yml like every other reply);
- the slots this turn's message had filled but nothing had validated are put back as they were, so a
  form keeps every earlier answer, asks the same question again and validates the retyped answer
  (left in place, an unvalidated answer would count as given and the form could skip or finish);
- `FollowupAction(action_listen)`: the turn ends here, as a turn does, rather than letting the
  policies guess what follows an action that did not happen.

The form's own state (active loop, requested slot) is untouched because the failed run's events were
never applied. A rejection (ActionExecutionRejection: "that answer was not for me") is not a failure and
passes through unchanged. Retrying is safe for bookings: see bot/intake/retries.py.
"""

from __future__ import annotations

import logging
from typing import Any, List

log = logging.getLogger(__name__)

FAILED_ACTION_RESPONSE = "utter_action_failed"


def _slots_since_last_message(tracker: Any, domain: Any) -> List[Any]:
    """SlotSet events restoring every slot changed since the visitor's latest message."""
    from rasa.shared.core.events import SlotSet, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    events = list(tracker.events)
    last_message = max((i for i, event in enumerate(events) if isinstance(event, UserUttered)), default=None)
    if last_message is None:
        return []
    changed = {event.key for event in events[last_message:] if isinstance(event, SlotSet)}
    if not changed:
        return []
    before = DialogueStateTracker.from_events(tracker.sender_id, events[:last_message], slots=domain.slots)
    return [
        SlotSet(name, before.get_slot(name))
        for name in sorted(changed)
        if name in tracker.slots and tracker.get_slot(name) != before.get_slot(name)
    ]


async def failure_events(output_channel: Any, nlg: Any, tracker: Any, domain: Any) -> List[Any]:
    """What the turn records instead of the failed action's events."""
    from rasa.core.actions.action import create_bot_utterance
    from rasa.shared.core.constants import ACTION_LISTEN_NAME
    from rasa.shared.core.events import FollowupAction

    events: List[Any] = []
    message = await nlg.generate(FAILED_ACTION_RESPONSE, tracker, output_channel.name())
    if message:
        message["utter_action"] = FAILED_ACTION_RESPONSE
        events.append(create_bot_utterance(message))
    else:  # the model predates the response: still never leave the turn silent
        log.error("response %s is missing from the model's domain", FAILED_ACTION_RESPONSE)
    events.extend(_slots_since_last_message(tracker, domain))
    events.append(FollowupAction(ACTION_LISTEN_NAME))
    return events


class _GuardedAction:
    """Runs `inner` and turns an error into failure_events; everything else is the inner action's."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def name(self) -> str:
        return str(self._inner.name())

    async def run(self, output_channel: Any, nlg: Any, tracker: Any, domain: Any) -> List[Any]:
        from rasa.core.actions.action import ActionExecutionRejection

        try:
            return list(await self._inner.run(output_channel, nlg, tracker, domain) or [])
        except ActionExecutionRejection:
            raise
        except Exception as error:  # every kind of failure gets the same reply
            # Type only: Rasa's messages can quote the action server's reply.
            log.error("custom action %s failed (%s); the visitor was asked to try again",
                      self.name(), type(error).__name__)
            return await failure_events(output_channel, nlg, tracker, domain)


def is_guarded_kind(action: Any) -> bool:
    """Custom actions (action server) and forms (whose validation runs on the action server)."""
    from rasa.core.actions.action import RemoteAction
    from rasa.core.actions.loops import LoopAction

    return isinstance(action, (RemoteAction, LoopAction))


def reply_when_actions_fail() -> None:
    """Wraps the action each prediction runs; installed by bot.ops.rasa_main before Rasa starts."""
    from rasa.core.processor import MessageProcessor

    rasa_run_action = MessageProcessor._run_action
    if getattr(rasa_run_action, "_replies_on_failure", False):
        return

    async def run_action(self: MessageProcessor, action: Any, *args: Any, **kwargs: Any) -> bool:
        guarded = _GuardedAction(action) if is_guarded_kind(action) else action
        return bool(await rasa_run_action(self, guarded, *args, **kwargs))

    run_action._replies_on_failure = True  # type: ignore[attr-defined]
    MessageProcessor._run_action = run_action
