"""The staff side's words (data/console.yml), loaded once per process and checked on load.

Kept out of the code so the wording can be changed without touching the handlers, the same way the
assistant's own words live in domain.yml.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict

import yaml

from bot.settings import PROJECT_ROOT, ConfigError

CONSOLE_FILE = PROJECT_ROOT / "data" / "console.yml"
# The keys the code looks up in each mapping: a missing one would otherwise fail inside the watcher's
# transaction (a notice) or hide a line from the transcript.
MAPPING_KEYS = {
    "reasons": {"risk", "asked_for_person", "could_not_help"},
    "system_lines": {"pause", "resume", "restart", "session_started"},
    "notices": {"new", "priority_raised", "escalation"},
}


@dataclass(frozen=True)
class ConsoleWording:
    reasons: Dict[str, str]
    system_lines: Dict[str, str]
    notices: Dict[str, str]
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
    values: Dict[str, Any] = {
        key: _mapping(path, key, value, MAPPING_KEYS[key]) if key in MAPPING_KEYS else str(value)
        for key, value in document.items()
    }
    return ConsoleWording(**values)


def _mapping(path: Path, name: str, raw: object, keys: set[str]) -> Dict[str, str]:
    if not isinstance(raw, dict) or set(raw) != keys:
        raise ConfigError(f"{path.name}: {name} needs exactly {sorted(keys)}")
    return {str(key): str(value) for key, value in raw.items()}


@lru_cache(maxsize=1)
def wording() -> ConsoleWording:
    return load_wording()
