"""Two pages at once: a visitor in the website's chat widget, a staff member in the console."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Browser, Page

from tests.e2e.conftest import (
    ROOT,
    RunningAssistant,
    bot_texts,
    create_account,
    log_in_to_console,
    send,
    wait_for_bot_text,
)

pytestmark = pytest.mark.e2e
PASSWORD = "widget handoff test password"
SCREENSHOTS = ROOT / "results" / "screenshots"


def wait_for_notice(page: Page, after: int, timeout_s: float = 10) -> str:
    """The handoff notice: "a person is being alerted right now" or "our office is closed right now"."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for text in bot_texts(page)[after:]:
            if "alerted right now" in text or "closed right now" in text:
                return text
        page.wait_for_timeout(50)
    raise AssertionError(f"no handoff notice; got {bot_texts(page)}")


@pytest.fixture(scope="module")
def staff_login(assistant: RunningAssistant) -> str:
    return create_account(assistant.env, "create-staff", "robin", "Robin", PASSWORD)


def test_visitor_in_the_widget_and_staff_in_the_console(
    assistant: RunningAssistant, staff_login: str, chromium: Browser
) -> None:
    visitor = chromium.new_context().new_page()
    staff = chromium.new_context().new_page()

    # The visitor opens the chat and asks for a person.
    visitor.goto(f"{assistant.web_url}/")
    visitor.get_by_role("button", name="Chat with our assistant").click()
    wait_for_bot_text(visitor, "automated assistant")
    before = send(visitor, "can I talk to a real person")
    wait_for_bot_text(visitor, "intake team", after=before)
    notice = wait_for_notice(visitor, before)
    assert "911" in notice and "988" in notice
    send(visitor, "I'm still here, my name is <b>Alex</b>")

    # Staff log in: the visitor's ticket is at the top of the queue.
    log_in_to_console(staff, assistant.web_url, staff_login, PASSWORD)
    top = staff.locator("#queue tbody tr").first
    assert top.locator("td").nth(1).inner_text() == "Asked for a person"
    top.locator("a").click()
    staff.wait_for_selector("#transcript")
    assert "my name is <b>Alex</b>" in staff.locator("#transcript").inner_text()

    # A staff reply shows up in the visitor's widget within a second.
    before = len(bot_texts(visitor))
    staff.fill("#reply-text", "Hello, this is Robin from the intake team.")
    clicked = time.monotonic()
    staff.click("#send-reply")
    wait_for_bot_text(visitor, "this is Robin", after=before, timeout_s=5)
    seen = time.monotonic()
    # Marked as from a person, first name only; the assistant's own messages stay labelled as such.
    assert visitor.locator(".hlc-from-staff .hlc-who").all_inner_texts() == ["Robin (a person from our team)"]
    assert visitor.locator(".hlc-from-bot:not(.hlc-from-staff) .hlc-who").first.inner_text() == "Assistant"
    assert seen - clicked < 1.0, f"reply took {seen - clicked:.2f} s to show"
    print(f"staff reply visible in the widget {(seen - clicked) * 1000:.0f} ms after the click")

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    visitor.screenshot(path=str(SCREENSHOTS / "handoff-visitor.png"))
    staff.wait_for_selector("#transcript .entry.staff")
    staff.screenshot(path=str(SCREENSHOTS / "handoff-staff-ticket.png"), full_page=True)

    # Hand back: the bot says so, then answers the visitor again.
    before = len(bot_texts(visitor))
    staff.click("#hand-back")
    wait_for_bot_text(visitor, "handed the conversation back", after=before)
    before = send(visitor, "are you a bot?")
    wait_for_bot_text(visitor, "automated assistant", after=before)
