"""Response generation that fills {practice_*} and {crisis_*} from the one practice file.

Runs inside the Rasa server (configured as `nlg: type: bot.nlg.PracticeNLG` in endpoints.yml), so the
crisis replies that quote 988/911 never depend on the action server.
"""

from __future__ import annotations

from typing import Any, Dict, List

from rasa.core.nlg.response import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from bot.settings import practice
from bot.topics import topics

# The clarifying question on a low-confidence guess. Its topic buttons are added here, inside the Rasa
# server, so the fallback works even when the action server is down or slow.
CLARIFY_RESPONSE = "utter_clarify_topics"


class PracticeNLG(TemplatedNaturalLanguageGenerator):
    """Rasa's templated generator plus the practice's facts as template variables."""

    def __init__(
        self,
        endpoint_config: EndpointConfig | None = None,
        domain: Domain | None = None,
        **_: Any,
    ) -> None:
        super().__init__((domain or Domain.empty()).responses)
        self._facts = practice().template_values()

    async def generate(
        self, utter_action: str, tracker: DialogueStateTracker, output_channel: str, **kwargs: Any
    ) -> Dict[str, Any] | None:
        response = await super().generate(utter_action, tracker, output_channel, **kwargs)
        if response is not None and utter_action == CLARIFY_RESPONSE:
            response["buttons"] = topics().suggestion_buttons(_intent_ranking(tracker)) + list(
                response.get("buttons") or []
            )
        return response

    def _response_variables(self, filled_slots: Dict[str, Any] | None, kwargs: Dict[str, Any]) -> Dict[str, Any]:
        variables: Dict[str, Any] = dict(self._facts)
        # Slots and call arguments win: a response may deliberately quote the user's own value.
        variables.update(TemplatedNaturalLanguageGenerator._response_variables(filled_slots or {}, kwargs))
        return variables


def _intent_ranking(tracker: DialogueStateTracker) -> List[Dict[str, Any]]:
    latest = tracker.latest_message
    return list(latest.parse_data.get("intent_ranking") or []) if latest else []


def render(text: str, extra: Dict[str, Any] | None = None) -> str:
    """Fill practice facts into a text outside a conversation (web page, tests)."""
    values: Dict[str, Any] = dict(practice().template_values())
    values.update(extra or {})
    return text.format(**values)
