"""The staff side's words come from data/console.yml, checked on load, and reach pages escaped."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
import yaml

from bot.db import session_scope
from bot.handoff import accounts, tickets, transcript
from bot.handoff.clock import ManualClock
from bot.handoff.config import HandoffSettings
from bot.handoff.console import routes
from bot.handoff.models import OutboxMessage
from bot.handoff.wording import CONSOLE_FILE, load_wording
from bot.settings import ConfigError
from tests.handoff.conftest import FakeRasa
from tests.handoff.console_client import Browser, ConsoleServer

PASSWORD = "a long enough password"


def edited_copy(tmp_path: Path, **changes: object) -> Path:
    """data/console.yml with some keys changed (None removes a key)."""
    document = yaml.safe_load(CONSOLE_FILE.read_text(encoding="utf-8"))
    for key, value in changes.items():
        if value is None:
            document.pop(key)
        else:
            document[key] = value
    path = tmp_path / "console.yml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def test_the_lockout_sentence_counts_minutes_in_words() -> None:
    words = load_wording()
    locked = words.lockout("Mon 05 Jan 10:15", 15)
    assert locked.endswith("after Mon 05 Jan 10:15 (practice time, in about 15 minutes).")
    assert words.lockout("Mon 05 Jan 10:01", 1).endswith("(practice time, in about 1 minute).")
    assert words.reasons["could_not_help"] == "Assistant could not help"


@pytest.mark.parametrize(
    "change,named",
    [
        ({"rasa_down": None}, "rasa_down"),
        ({"rasa_dwon": "typo"}, "rasa_dwon"),
        ({"notices": {"new": "New ticket", "priority_raised": "More urgent"}}, "notices"),  # no escalation
        ({"system_lines": "Assistant paused"}, "system_lines"),
    ],
)
def test_a_missing_or_misspelt_key_stops_the_staff_side_from_loading(tmp_path: Path, change: dict, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_wording(edited_copy(tmp_path, **change))


def test_transcript_lines_and_webhook_notices_use_the_file(
    tmp_path: Path, settings: HandoffSettings, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = {"pause": "Bot on hold", "resume": "Bot back", "restart": "Started over", "session_started": "New visit"}
    notices = {"new": "Someone needs you", "priority_raised": "More urgent now", "escalation": "Still waiting"}
    reworded = load_wording(edited_copy(tmp_path, system_lines=lines, notices=notices))
    monkeypatch.setattr(transcript, "wording", lambda: reworded)
    monkeypatch.setattr(tickets, "wording", lambda: reworded)
    paused = transcript.TrackerEvent(7, "v1", "pause", 1767625200.0, None, None, {})
    assert [(entry.kind, entry.text) for entry in transcript.to_entries([paused])] == [("system", "Bot on hold")]
    with session_scope(settings.database_url) as session:
        tickets.open_ticket(session, clock, "v1", "risk", "acute", settings.console_url)
        (notice,) = session.query(OutboxMessage).all()
        assert notice.payload["text"].startswith("Someone needs you (priority: acute): http://localhost:5600/staff/")


@pytest.fixture
def reworded_server(
    tmp_path: Path, settings: HandoffSettings, clock: ManualClock, rasa: FakeRasa, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ConsoleServer]:
    """A console reading a reworded copy of the file, with markup in two of its values."""
    path = edited_copy(
        tmp_path,
        wrong_login="<b>No match</b> for that name & password.",
        not_logged_in="please log in (reworded)",
        admins_only="<i>Admins</i> only, sorry.",
    )
    monkeypatch.setattr(routes, "wording", lambda: load_wording(path))
    with session_scope(settings.database_url) as session:
        accounts.create_account(session, clock, "sam", "Sam", PASSWORD, "intake")
    running = ConsoleServer(settings, clock, rasa)
    yield running
    running.stop()


def test_pages_and_refusals_use_the_file_and_pages_escape_it(reworded_server: ConsoleServer) -> None:
    failed = Browser(reworded_server.url).log_in("sam", "not the password")
    assert failed.status_code == 401
    assert "&lt;b&gt;No match&lt;/b&gt; for that name &amp; password." in failed.text
    assert "<b>No match" not in failed.text and "Wrong username or password." not in failed.text
    assert Browser(reworded_server.url).get("/staff/api/queue").text == "please log in (reworded)"
    sam = Browser(reworded_server.url)
    assert sam.log_in("sam", PASSWORD).status_code == 303
    refused = sam.get("/staff/admin/staff")
    assert refused.status_code == 403 and "&lt;i&gt;Admins&lt;/i&gt; only, sorry." in refused.text
