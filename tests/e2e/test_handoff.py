"""Handoff end to end: a visitor on Rasa's socket.io channel (the widget's transport), a staff member in
Debian's chromium on the console, the real launcher with Rasa, the action server and the website."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any, Callable, Dict, List

import pytest
import socketio
from playwright.sync_api import Browser, Page

from tests.e2e.conftest import ROOT, RunningAssistant, create_account, log_in_to_console, tracker_events
from tests.handoff.console_client import Browser as ConsoleClient

pytestmark = pytest.mark.e2e
PASSWORD = "staff console test password"


class Visitor:
    """What the widget does on the wire: socket.io to Rasa, session_request, user_uttered, bot_uttered."""

    def __init__(self, rasa_url: str) -> None:
        self.session_id = f"e2e-handoff-{uuid.uuid4()}"
        self.received: List[Dict[str, Any]] = []
        self.arrivals: List[float] = []
        self._lock = threading.Lock()
        self.client = socketio.Client()
        self.client.on("bot_uttered", self._on_bot)
        self.client.connect(rasa_url, transports=["polling"])
        self.client.emit("session_request", {"session_id": self.session_id})
        time.sleep(0.3)

    def _on_bot(self, data: Dict[str, Any]) -> None:
        with self._lock:
            self.received.append(data)
            self.arrivals.append(time.monotonic())

    def say(self, text: str) -> int:
        with self._lock:
            mark = len(self.received)
        self.client.emit("user_uttered", {"message": text, "session_id": self.session_id})
        return mark

    def wait_for(self, since: int, found: Callable[[Dict[str, Any]], bool], timeout: float = 10) -> Dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for message in self.received[since:]:
                    if found(message):
                        return message
            time.sleep(0.05)
        raise AssertionError(f"no matching message within {timeout} s; got {self.received[since:]}")

    def close(self) -> None:
        self.client.disconnect()


def crisis_replies() -> List[str]:
    """The three crisis responses as Rasa renders them (wording from domain.yml, numbers from practice.yml)."""
    from rasa.shared.core.domain import Domain

    from bot.nlg import PracticeNLG

    nlg = PracticeNLG(domain=Domain.load(str(ROOT / "domain.yml")))
    return [
        nlg.generate_from_slots(f"utter_risk_{level}", {}, "socketio")["text"]  # type: ignore[index]
        for level in ("imminent", "acute", "concern")
    ]


def text_has(*words: str) -> Callable[[Dict[str, Any]], bool]:
    return lambda message: all(word in str(message.get("text", "")) for word in words)


@pytest.fixture(scope="module")
def staff_account(assistant: RunningAssistant) -> str:
    return create_account(assistant.env, "create-admin", "dana", "Dana", PASSWORD)


@pytest.fixture
def staff_page(chromium: Browser) -> Page:
    return chromium.new_page()


def test_visitor_hands_over_staff_replies_live_and_hands_back(
    assistant: RunningAssistant, staff_account: str, staff_page: Page
) -> None:
    visitor = Visitor(assistant.rasa_url)
    try:
        # 1. The visitor asks for a person: the usual reply, then (from the watcher) the honest next steps.
        mark = visitor.say("can I talk to a real person")
        notice = visitor.wait_for(mark, lambda m: "intake team" in m.get("text", "") and "911" in m.get("text", ""))
        assert "988" in notice["text"]
        visitor.wait_for(mark, lambda m: "alerted right now" in m["text"] or "closed right now" in m["text"])

        # 2. Paused, but a risk message still gets the crisis reply; other messages are kept.
        crisis = crisis_replies()
        mark = visitor.say("I want to kill myself")
        visitor.wait_for(mark, lambda message: message.get("text") in crisis, timeout=5)
        visitor.say('<script>window.__xss = 1; alert("x")</script>')
        time.sleep(1)

        # 3. Staff log in, see the ticket at the top of the queue, open it.
        dialogs: List[str] = []
        staff_page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        log_in_to_console(staff_page, assistant.web_url, staff_account, PASSWORD)
        first_row = staff_page.locator("#queue tbody tr").first
        assert first_row.locator("td").first.inner_text() in ("acute", "imminent")
        first_row.locator("a").click()
        staff_page.wait_for_selector("#transcript")
        ticket_path = staff_page.url.removeprefix(assistant.web_url)
        transcript = staff_page.locator("#transcript").inner_text()
        assert "can I talk to a real person" in transcript
        assert '<script>window.__xss = 1; alert("x")</script>' in transcript  # shown as text
        assert staff_page.evaluate("window.__xss === undefined") and not dialogs

        # 4. Staff reply: it reaches the visitor's socket within a second, marked as from a person.
        mark = len(visitor.received)
        staff_page.fill("#reply-text", "Hi, this is Dana from the intake team. Are you safe right now?")
        sent_at = time.monotonic()
        staff_page.click("#send-reply")
        reply = visitor.wait_for(mark, text_has("this is Dana"), timeout=5)
        latency = visitor.arrivals[visitor.received.index(reply)] - sent_at
        assert reply.get("from_staff") is True and reply.get("staff_name") == "Dana"
        assert latency < 1.0, f"staff reply took {latency:.2f} s"
        print(f"staff reply reached the visitor {latency * 1000:.0f} ms after the click")
        staff_page.wait_for_selector("#transcript .entry.staff")

        # 5. Hand back: the bot says so and answers again.
        mark = len(visitor.received)
        staff_page.click("#hand-back")
        visitor.wait_for(mark, text_has("handed the conversation back"))
        mark = visitor.say("are you a bot?")
        visitor.wait_for(mark, text_has("automated assistant"))
        kinds = [event["event"] for event in tracker_events(assistant.rasa_url, assistant.token, visitor.session_id)]
        assert "pause" in kinds and kinds.index("resume") > kinds.index("pause")

        # 6. Close with an outcome note; the ticket leaves the queue.
        staff_page.fill("#outcome-note", "Visitor safe, intake call booked.")
        staff_page.click("#close-ticket")
        staff_page.wait_for_url(f"{assistant.web_url}{ticket_path}")
        assert "Visitor safe, intake call booked." in staff_page.locator(".facts").inner_text()
        staff_page.goto(f"{assistant.web_url}/staff/")
        assert staff_page.locator(f'#queue a[href="{ticket_path}"]').count() == 0
    finally:
        visitor.close()


def tickets_of(assistant: RunningAssistant, conversation_id: str) -> List[tuple]:
    from sqlalchemy import create_engine, text

    engine = create_engine(assistant.env.get("DATABASE_URL") or f"sqlite:///{assistant.var_dir / 'app.db'}")
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT id, reason, risk_level FROM handoff_tickets WHERE conversation_id = :c ORDER BY id"),
            {"c": conversation_id},
        )
        found = [tuple(row) for row in rows]
    engine.dispose()
    return found


def test_none_of_these_opens_a_ticket_pauses_and_crisis_replies_still_come(
    assistant: RunningAssistant, staff_account: str
) -> None:
    visitor = Visitor(assistant.rasa_url)
    try:
        # A miss, then "None of these" on the clarifying question: the bot says it brings in a person...
        mark = visitor.say("flurb zaxxon quibble")
        question = visitor.wait_for(mark, text_has("Did you mean one of these?"))
        # Rasa's socket.io channel sends buttons as "quick_replies".
        none = next(button for button in question["quick_replies"] if button["title"] == "None of these")
        mark = visitor.say(none["payload"])
        visitor.wait_for(mark, text_has("bringing in a person", "988", "911"))
        # ...and it happens: the same notice, ticket and pause as "talk to a person".
        visitor.wait_for(mark, lambda m: "alerted right now" in m["text"] or "closed right now" in m["text"])
        [(ticket_id, reason, _)] = tickets_of(assistant, visitor.session_id)
        assert reason == "could_not_help"

        # Paused this way, a risk message still gets the crisis reply, and the ticket becomes urgent.
        mark = visitor.say("I want to kill myself")
        visitor.wait_for(mark, lambda message: message.get("text") in crisis_replies(), timeout=5)
        events = tracker_events(assistant.rasa_url, assistant.token, visitor.session_id)
        assert [event["event"] for event in events].count("pause") == 1
        deadline = time.monotonic() + 5
        while tickets_of(assistant, visitor.session_id)[0][2] is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert tickets_of(assistant, visitor.session_id) == [(ticket_id, "risk", "acute")]

        # Staff see it in the same queue and console; closing it leaves the queue as the next test expects.
        staff = ConsoleClient(assistant.web_url)
        assert staff.log_in(staff_account, PASSWORD).status_code == 303
        rows = staff.get("/staff/api/queue").json()["tickets"]
        assert any(row["id"] == ticket_id and row["priority"] == "acute" for row in rows)
        page = staff.get(f"/staff/tickets/{ticket_id}").text
        assert "flurb zaxxon quibble" in page and "bringing in a person" in page
        token = staff.csrf_from(f"/staff/tickets/{ticket_id}")
        closed = staff.post(f"/staff/tickets/{ticket_id}/close", {"csrf_token": token, "outcome_note": "test"})
        assert closed.status_code == 303
    finally:
        visitor.close()
