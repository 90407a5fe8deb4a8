"""Response generation that fills {practice_*} and {crisis_*} from the one practice file.

Runs inside the Rasa server (configured as `nlg: type: bot.nlg.PracticeNLG` in endpoints.yml), so the
crisis replies that quote 988/911 never depend on the action server.
"""

from __future__ import annotations

from typing import Any, Dict

from rasa.core.nlg.response import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.utils.endpoints import EndpointConfig

from bot.settings import practice


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

    def _response_variables(self, filled_slots: Dict[str, Any] | None, kwargs: Dict[str, Any]) -> Dict[str, Any]:
        variables: Dict[str, Any] = dict(self._facts)
        # Slots and call arguments win: a response may deliberately quote the user's own value.
        variables.update(TemplatedNaturalLanguageGenerator._response_variables(filled_slots or {}, kwargs))
        return variables


def render(text: str, extra: Dict[str, Any] | None = None) -> str:
    """Fill practice facts into a text outside a conversation (web page, tests)."""
    values: Dict[str, Any] = dict(practice().template_values())
    values.update(extra or {})
    return text.format(**values)
