"""The staff console's words (data/console.yml), loaded once per process and checked on load.

Kept out of the route code so the wording can be changed without touching the handlers, the same way
the assistant's own words live in domain.yml.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict

import yaml

from bot.settings import PROJECT_ROOT, ConfigError

CONSOLE_FILE = PROJECT_ROOT / "data" / "console.yml"


@dataclass(frozen=True)
class ConsoleWording:
    reasons: Dict[str, str]
    wrong_login: str
    login_locked: str
    wait_one_minute: str
    wait_minutes: str
    login_csrf_refused: str
    not_logged_in: str
    csrf_refused: str
    cross_site_refused: str
    admins_only_title: str
    admins_only: str
    no_such_ticket: str
    after_not_a_number: str
    rasa_down: str
    reply_empty: str
    ticket_closed: str
    claimed_by_other: str
    cannot_deactivate_self: str

    def lockout(self, until: str, minutes: int) -> str:
        """The 429 text: try again after `until` (practice time), in about `minutes`."""
        wait = self.wait_one_minute if minutes == 1 else self.wait_minutes.format(minutes=minutes)
        return self.login_locked.format(until=until, wait=wait)


def load_wording(path: Path = CONSOLE_FILE) -> ConsoleWording:
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    expected = {field.name for field in dataclasses.fields(ConsoleWording)}
    if set(document) != expected:  # a typo'd key would otherwise only show up on the page that needs it
        missing, unknown = sorted(expected - set(document)), sorted(set(document) - expected)
        raise ConfigError(f"{path.name}: missing {missing or 'nothing'}, unknown {unknown or 'nothing'}")
    reasons = {str(key): str(value) for key, value in document.pop("reasons").items()}
    return ConsoleWording(reasons=reasons, **{key: str(value) for key, value in document.items()})


@lru_cache(maxsize=1)
def wording() -> ConsoleWording:
    return load_wording()
