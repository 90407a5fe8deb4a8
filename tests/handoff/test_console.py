from __future__ import annotations

from typing import Iterator, List, Tuple

import pytest

from bot.db import session_scope
from bot.handoff import accounts, tickets
from bot.handoff.clock import ManualClock
from bot.handoff.config import HandoffSettings
from bot.handoff.models import AuditEntry, Ticket
from tests.handoff.conftest import FakeRasa, TrackerFile
from tests.handoff.console_client import Browser, ConsoleServer

PASSWORD = "a long enough password"


@pytest.fixture
def server(settings: HandoffSettings, clock: ManualClock, rasa: FakeRasa) -> Iterator[ConsoleServer]:
    with session_scope(settings.database_url) as session:
        accounts.create_account(session, clock, "dana", "Dana", PASSWORD, "admin")
        accounts.create_account(session, clock, "sam", "Sam", PASSWORD, "intake")
    running = ConsoleServer(settings, clock, rasa)
    yield running
    running.stop()


def logged_in(server: ConsoleServer, username: str) -> Browser:
    browser = Browser(server.url)
    assert browser.log_in(username, PASSWORD).status_code == 303
    return browser


def ticket_for(settings: HandoffSettings, clock: ManualClock, conversation: str, reason: str, level=None) -> int:
    with session_scope(settings.database_url) as session:
        return tickets.open_ticket(session, clock, conversation, reason, level, "http://x/staff").ticket.id


def sam_on_new_ticket(
    server: ConsoleServer, settings: HandoffSettings, clock: ManualClock, conversation: str
) -> Tuple[int, Browser, str]:
    """A new "asked for a person" ticket, Sam logged in, and the CSRF token of its page."""
    ticket_id = ticket_for(settings, clock, conversation, "asked_for_person")
    sam = logged_in(server, "sam")
    return ticket_id, sam, sam.csrf_from(f"/staff/tickets/{ticket_id}")


def audit_entries(settings: HandoffSettings) -> List[AuditEntry]:
    with session_scope(settings.database_url) as session:
        return list(session.query(AuditEntry).order_by(AuditEntry.id))


def audit_actions(settings: HandoffSettings) -> List[tuple]:
    with session_scope(settings.database_url) as session:
        return [(e.staff_username, e.action, e.ticket_id) for e in session.query(AuditEntry).order_by(AuditEntry.id)]


@pytest.mark.parametrize(
    "method,path",
    [
        ("get", "/staff/"),
        ("get", "/staff/api/queue"),
        ("get", "/staff/tickets/1"),
        ("get", "/staff/api/tickets/1/transcript"),
        ("get", "/staff/admin/staff"),
        ("post", "/staff/tickets/1/claim"),
        ("post", "/staff/tickets/1/reply"),
    ],
)
def test_everything_needs_a_login(server: ConsoleServer, method: str, path: str) -> None:
    assert getattr(Browser(server.url), method)(path).status_code == 401


def test_login_sets_a_strict_session_cookie(server: ConsoleServer) -> None:
    browser = Browser(server.url)
    assert browser.log_in("dana", "wrong password here").status_code == 401
    assert "hl_staff_session" not in browser.cookies
    response = browser.log_in("Dana", PASSWORD)
    assert response.status_code == 303 and response.headers["Location"] == "/staff/"
    session_cookie = next(c for c in browser.raw_set_cookies if c.startswith("hl_staff_session="))
    for flag in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/staff"):
        assert flag in session_cookie
    page = browser.get("/staff/")
    assert page.status_code == 200 and "Waiting conversations" in page.text
    assert page.headers["Cache-Control"] == "no-store"


def test_passwords_are_stored_as_argon2id(server: ConsoleServer, settings: HandoffSettings) -> None:
    from bot.handoff.models import StaffAccount

    with session_scope(settings.database_url) as session:
        stored = session.query(StaffAccount).filter_by(username="dana").one().password_hash
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_login_without_its_csrf_token_is_refused(server: ConsoleServer) -> None:
    browser = Browser(server.url)
    browser.get("/staff/login")
    assert browser.post("/staff/login", {"username": "dana", "password": PASSWORD}).status_code == 403
    other = Browser(server.url)  # a token from another browser's login page does not fit this one
    token = Browser(server.url).csrf_from("/staff/login")
    other.get("/staff/login")
    assert (
        other.post("/staff/login", {"username": "dana", "password": PASSWORD, "csrf_token": token}).status_code == 403
    )


def test_every_post_needs_the_csrf_token(server: ConsoleServer, settings: HandoffSettings, clock: ManualClock) -> None:
    ticket_id = ticket_for(settings, clock, "c1", "asked_for_person")
    browser = logged_in(server, "sam")
    assert browser.post(f"/staff/tickets/{ticket_id}/claim").status_code == 403
    assert browser.post(f"/staff/tickets/{ticket_id}/claim", {"csrf_token": "forged"}).status_code == 403
    token = browser.csrf_from(f"/staff/tickets/{ticket_id}")
    cross_site = browser.post(
        f"/staff/tickets/{ticket_id}/claim", {"csrf_token": token}, headers={"Origin": "https://evil.example"}
    )
    assert cross_site.status_code == 403
    with session_scope(settings.database_url) as session:
        assert session.get(Ticket, ticket_id).status == "new"
    assert browser.post(f"/staff/tickets/{ticket_id}/claim", {"csrf_token": token}).status_code == 303
    with session_scope(settings.database_url) as session:
        assert session.get(Ticket, ticket_id).status == "claimed"


def test_admin_pages_are_forbidden_for_intake_staff(server: ConsoleServer) -> None:
    sam = logged_in(server, "sam")
    token = sam.csrf_from("/staff/")
    assert sam.get("/staff/admin/staff").status_code == 403
    assert sam.get("/staff/admin/audit").status_code == 403
    created = sam.post(
        "/staff/admin/staff",
        {"csrf_token": token, "username": "eve", "first_name": "Eve", "password": PASSWORD, "role": "admin"},
    )
    assert created.status_code == 403
    dana = logged_in(server, "dana")
    assert dana.get("/staff/admin/staff").status_code == 200
    token = dana.csrf_from("/staff/admin/staff")
    created = dana.post(
        "/staff/admin/staff",
        {"csrf_token": token, "username": "kim", "first_name": "Kim", "password": PASSWORD, "role": "intake"},
    )
    assert created.status_code == 303
    assert logged_in(server, "kim").get("/staff/").status_code == 200


def test_deactivated_staff_lose_their_session(server: ConsoleServer, settings: HandoffSettings) -> None:
    sam = logged_in(server, "sam")
    dana = logged_in(server, "dana")
    from bot.handoff.models import StaffAccount

    with session_scope(settings.database_url) as session:
        sam_id = session.query(StaffAccount).filter_by(username="sam").one().id
    token = dana.csrf_from("/staff/admin/staff")
    assert dana.post(f"/staff/admin/staff/{sam_id}/active", {"csrf_token": token, "active": "0"}).status_code == 303
    assert sam.get("/staff/").status_code == 401
    assert Browser(server.url).log_in("sam", PASSWORD).status_code == 401


def test_idle_sessions_expire_and_polling_does_not_keep_them_alive(server: ConsoleServer, clock: ManualClock) -> None:
    browser = logged_in(server, "sam")
    clock.advance(minutes=10)
    assert browser.get("/staff/api/queue").status_code == 200
    clock.advance(minutes=6)  # 16 minutes since the last real activity
    assert browser.get("/staff/").status_code == 401
    again = logged_in(server, "sam")
    clock.advance(minutes=14)
    assert again.get("/staff/").status_code == 200
    clock.advance(minutes=14)
    assert again.get("/staff/").status_code == 200


def test_logout_ends_the_session(server: ConsoleServer) -> None:
    browser = logged_in(server, "sam")
    cookie = dict(browser.cookies)
    assert browser.post("/staff/logout", {"csrf_token": browser.csrf_from("/staff/")}).status_code == 303
    browser.cookies = cookie  # even a kept copy of the cookie is dead now
    assert browser.get("/staff/").status_code == 401


def test_queue_api_lists_the_most_urgent_first(
    server: ConsoleServer, settings: HandoffSettings, clock: ManualClock
) -> None:
    ticket_for(settings, clock, "a", "asked_for_person")
    clock.advance(minutes=2)
    urgent = ticket_for(settings, clock, "b", "risk", "imminent")
    rows = logged_in(server, "sam").get("/staff/api/queue").json()["tickets"]
    assert next(row["id"] for row in rows) == urgent
    assert [row["priority"] for row in rows] == ["imminent", "other"]
    assert rows[1]["waiting_minutes"] == 2


def test_ticket_page_shows_the_transcript_escaped_and_audits_the_view(
    server: ConsoleServer, settings: HandoffSettings, clock: ManualClock, trackers: TrackerFile
) -> None:
    attack = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    trackers.visitor("c1", attack, "risk_concern", risk_assessment={"level": "concern", "reasons": ["rule:worry"]})
    ticket_id = ticket_for(settings, clock, "c1", "risk", "concern")
    page = logged_in(server, "sam").get(f"/staff/tickets/{ticket_id}")
    assert page.status_code == 200
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in page.text
    assert "<script>alert" not in page.text and "<img src=x" not in page.text
    assert "rule:worry" in page.text  # the risk assessment from the parse data is shown
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert ("sam", "transcript_viewed", ticket_id) in audit_actions(settings)
    entries = logged_in(server, "sam").get(f"/staff/api/tickets/{ticket_id}/transcript?after=0").json()["entries"]
    assert entries[-1]["text"] == attack and entries[-1]["kind"] == "visitor"  # JSON; the page inserts it as text


def test_claim_reply_hand_back_and_close_reach_rasa_and_the_audit_log(
    server: ConsoleServer, settings: HandoffSettings, clock: ManualClock, rasa: FakeRasa, trackers: TrackerFile
) -> None:
    trackers.visitor("c1", "a person please", "request_human")
    ticket_id, sam, token = sam_on_new_ticket(server, settings, clock, "c1")
    assert sam.post(f"/staff/tickets/{ticket_id}/claim", {"csrf_token": token}).status_code == 303
    assert (
        sam.post(f"/staff/tickets/{ticket_id}/reply", {"csrf_token": token, "text": "Hi, I'm here."}).status_code == 303
    )
    assert ("staff_reply", "c1", "Hi, I'm here.", "Sam") in rasa.calls
    page = sam.get(f"/staff/tickets/{ticket_id}")
    assert "Sam (staff)" in page.text and "Hi, I&#39;m here." in page.text
    dana = logged_in(server, "dana")
    other = dana.post(f"/staff/tickets/{ticket_id}/reply", {"csrf_token": dana.csrf_from("/staff/"), "text": "me too"})
    assert "Another%20team%20member" in other.headers["Location"]
    assert sam.post(f"/staff/tickets/{ticket_id}/hand-back", {"csrf_token": token}).status_code == 303
    assert rasa.calls[-2:] == [("resume", "c1"), ("utter", "c1", "utter_handoff_resumed")]
    refused = sam.post(f"/staff/tickets/{ticket_id}/close", {"csrf_token": token, "outcome_note": ""})
    assert "outcome%20note" in refused.headers["Location"]
    assert (
        sam.post(
            f"/staff/tickets/{ticket_id}/close", {"csrf_token": token, "outcome_note": "booked a call"}
        ).status_code
        == 303
    )
    assert rasa.names("resume") == ["c1"]  # already handed back: closing does not resume twice
    with session_scope(settings.database_url) as session:
        ticket = session.get(Ticket, ticket_id)
        assert (ticket.status, ticket.outcome_note, ticket.claimed_by.username) == ("closed", "booked a call", "sam")
    sam_actions = [action for who, action, tid in audit_actions(settings) if who == "sam" and tid == ticket_id]
    assert sam_actions == [
        "transcript_viewed",
        "ticket_claimed",
        "reply_sent",
        "transcript_viewed",
        "handed_back",
        "ticket_closed",
    ]


def test_closing_without_hand_back_resumes_the_bot(
    server: ConsoleServer, settings: HandoffSettings, clock: ManualClock, rasa: FakeRasa, trackers: TrackerFile
) -> None:
    trackers.visitor("c2", "person", "request_human")
    ticket_id, sam, token = sam_on_new_ticket(server, settings, clock, "c2")
    sam.post(f"/staff/tickets/{ticket_id}/close", {"csrf_token": token, "outcome_note": "no answer"})
    assert rasa.calls == [("resume", "c2"), ("utter", "c2", "utter_handoff_resumed")]


def test_admins_read_the_audit_log(server: ConsoleServer) -> None:
    logged_in(server, "sam")
    page = logged_in(server, "dana").get("/staff/admin/audit")
    assert page.status_code == 200 and "login" in page.text and "sam" in page.text


def test_the_website_serves_the_console(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from bot.settings import runtime
    from bot.web.server import create_app

    monkeypatch.setenv("BOT_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("HANDOFF_WORKERS", "0")
    import asyncio

    async def check() -> None:
        settings = runtime()
        from bot.db import upgrade

        upgrade(settings.database_url)
        async with TestClient(TestServer(create_app(settings, settings.rasa_url))) as client:
            response = await client.get("/staff/")
            assert response.status == 401
            assert "Staff log in" in await response.text()
            assert "script-src 'self'" in response.headers["Content-Security-Policy"]

    asyncio.run(check())


def test_when_rasa_refuses_a_reply_nothing_is_recorded(
    server: ConsoleServer,
    settings: HandoffSettings,
    clock: ManualClock,
    rasa: FakeRasa,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bot.handoff.rasa_api import RasaUnavailable

    def refuse(*_: object) -> None:
        raise RasaUnavailable("Rasa is restarting")

    monkeypatch.setattr(rasa, "staff_reply", refuse)
    ticket_id, sam, token = sam_on_new_ticket(server, settings, clock, "c3")
    answer = sam.post(f"/staff/tickets/{ticket_id}/reply", {"csrf_token": token, "text": "hello"})
    assert "did%20not%20answer" in answer.headers["Location"]
    with session_scope(settings.database_url) as session:
        assert session.get(Ticket, ticket_id).status == "new"
    assert "reply_sent" not in [action for _, action, _ in audit_actions(settings)]


def test_ticket_page_shows_the_conversations_live_booking(
    server: ConsoleServer, settings: HandoffSettings, clock: ManualClock
) -> None:
    from bot.intake import answers, schedule, store
    from bot.settings import practice

    details = store.IntakeDetails(
        care_for="me",
        age=30,
        first_name="Robin",
        state="NY",
        insurance="UHC",
        insurance_accepted=True,
        care_type="therapy only",
        preferred_method="text",
        ok_to_leave_message=False,
        phone=answers.parse_phone("212-555-0123"),
    )
    start = next(schedule.upcoming_call_starts(practice(), clock.now()))
    booked = store.book(practice(), details, start, clock.now(), settings.database_url, "c-booked")
    with_booking = ticket_for(settings, clock, "c-booked", "asked_for_person")
    without_booking = ticket_for(settings, clock, "c-other", "asked_for_person")
    browser = logged_in(server, "sam")

    page = browser.get(f"/staff/tickets/{with_booking}").text
    assert f"<dt>Confirmation code</dt><dd>{booked.code}</dd>" in page
    assert "<dt>Safe to leave a message</dt><dd>No, do not leave a message</dd>" in page
    assert "<dt>Contact by</dt><dd>Text message</dd>" in page
    other = browser.get(f"/staff/tickets/{without_booking}").text
    assert booked.code not in other and "No booking in this conversation." in other

    store.cancel(practice(), booked.code, "212-555-0123", url=settings.database_url)
    assert booked.code not in browser.get(f"/staff/tickets/{with_booking}").text


# --- login rate limiting ------------------------------------------------------------------------------
@pytest.fixture
def behind_proxy(settings: HandoffSettings, clock: ManualClock, rasa: FakeRasa) -> Iterator[ConsoleServer]:
    """The console as production runs it: nginx on 127.0.0.1 says who the client is in X-Forwarded-For."""
    from dataclasses import replace

    with session_scope(settings.database_url) as session:
        accounts.create_account(session, clock, "sam", "Sam", PASSWORD, "intake")
    running = ConsoleServer(replace(settings, trusted_proxies=("127.0.0.1",)), clock, rasa)
    yield running
    running.stop()


def log_in_from(server: ConsoleServer, address: str, username: str, password: str):  # type: ignore[no-untyped-def]
    browser = Browser(server.url)
    token = browser.csrf_from("/staff/login")
    return browser.post(
        "/staff/login",
        {"username": username, "password": password, "csrf_token": token},
        headers={"X-Forwarded-For": f"6.6.6.6, {address}"},  # the left part is the client's own, ignored
    )


def without_csrf(page: str) -> str:
    from tests.handoff.console_client import CSRF_FIELD

    return CSRF_FIELD.sub("", page)


def test_guessing_one_name_is_refused_with_when_to_try_again(
    behind_proxy: ConsoleServer, settings: HandoffSettings, clock: ManualClock
) -> None:
    for number in range(5):  # five addresses, so only the name's counter reaches the limit
        assert log_in_from(behind_proxy, f"198.51.100.{number}", "sam", "wrong password!").status_code == 401
    refused = log_in_from(behind_proxy, "203.0.113.50", "sam", PASSWORD)  # even the right password
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "900"
    # 15:00 UTC + 15 minutes, in the practice's time zone (New York).
    assert "please try again after Mon 05 Jan 10:15 (practice time, in about 15 minutes)" in refused.text
    assert "hl_staff_session" not in refused.headers.get("Set-Cookie", "")

    # A name that does not exist is refused in exactly the same words.
    for number in range(5):
        assert log_in_from(behind_proxy, f"192.0.2.{number}", "nobody", "wrong password!").status_code == 401
    unknown = log_in_from(behind_proxy, "203.0.113.51", "nobody", PASSWORD)
    assert unknown.status_code == 429 and without_csrf(unknown.text) == without_csrf(refused.text)

    locks = [e for e in audit_entries(settings) if e.action == "login_locked"]
    assert [(e.staff_username, e.detail["scope"], e.detail["address"]) for e in locks] == [
        ("sam", "account", "198.51.100.4"),
        ("nobody", "account", "192.0.2.4"),
    ]
    assert locks[0].detail["until"] == "2026-01-05T15:15:00+00:00"
    clock.advance(minutes=15)
    assert log_in_from(behind_proxy, "203.0.113.50", "sam", PASSWORD).status_code == 303


def test_one_address_guessing_many_names_is_refused_there_only(behind_proxy: ConsoleServer) -> None:
    for name in ("ana", "bo", "cy", "di", "ed"):
        assert log_in_from(behind_proxy, "198.51.100.7", name, "wrong password!").status_code == 401
    assert log_in_from(behind_proxy, "198.51.100.7", "sam", PASSWORD).status_code == 429
    assert log_in_from(behind_proxy, "198.51.100.8", "sam", PASSWORD).status_code == 303


def test_a_successful_login_resets_the_names_counter(behind_proxy: ConsoleServer, clock: ManualClock) -> None:
    for round_ in range(2):
        for number in range(4):
            address = f"198.51.100.{10 * round_ + number}"
            assert log_in_from(behind_proxy, address, "sam", "wrong password!").status_code == 401
        clock.advance(minutes=1)
        # Eight failures within 15 minutes in all, but never five since the last success.
        assert log_in_from(behind_proxy, "203.0.113.9", "sam", PASSWORD).status_code == 303


def test_without_a_trusted_proxy_forwarded_for_is_ignored(server: ConsoleServer) -> None:
    for number in range(5):  # a client cannot pose as many addresses by writing the header itself
        assert log_in_from(server, f"198.51.100.{number}", f"name{number}", "wrong password!").status_code == 401
    assert log_in_from(server, "198.51.100.99", "dana", PASSWORD).status_code == 429
