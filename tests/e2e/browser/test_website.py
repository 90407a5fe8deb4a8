"""The practice's page and the chat widget in a real browser (Debian's chromium through Playwright).

The tests run in file order: the last one stops the Rasa server.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from typing import Any, Callable, Dict, List

import pytest
import requests
from playwright.sync_api import Page

from bot.settings import practice
from tests.e2e.browser.conftest import AXE_SCRIPT, SCREENSHOTS, Stack
from tests.e2e.conftest import bot_texts, send, tracker_events, wait_for_bot_text

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

NewPage = Callable[..., Page]
GREETING = "automated assistant for"
GREETING_END = "What would you like to know?"  # the greeting's last bubble (utter_how_can_i_help)
CAPABILITIES = "I can explain the kinds of therapy we offer"
# The answer behind the greeting's "Therapy options" quick reply (/ask_therapy_options).
THERAPY_OPTIONS = "Our therapists use several approaches"


# ------------------------------------------------------------------------------------------ helpers


def open_chat(page: Page, stack: Stack, via: str = "Chat with our assistant") -> Page:
    page.goto(stack.web_url + "/")
    page.get_by_role("button", name=via).click()
    wait_for_bot_text(page, GREETING)
    # The greeting is three bubbles (hello, the crisis line, the menu); a test that counts bubbles before
    # sending must start after the last, or the crisis-line bubble could pass for the reply it waits for.
    wait_for_bot_text(page, GREETING_END)
    return page


def user_texts(page: Page) -> List[str]:
    return page.locator(".hlc-from-user .hlc-bubble").all_inner_texts()


def stored_state(page: Page) -> Dict[str, Any] | None:
    raw = page.evaluate("() => sessionStorage.getItem('harbor-chat:v1')")
    return json.loads(raw) if raw else None


def screenshot(page: Page, name: str, full_page: bool = False) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


# ------------------------------------------------------------------------------------------ the page


def test_page_has_the_crisis_line_in_plain_html_and_security_headers(stack: Stack) -> None:
    response = requests.get(stack.web_url + "/", timeout=10)
    html = response.text
    facts = practice()
    assert "In danger now?" in html
    assert f'href="tel:{facts.crisis["emergency_number"]}"' in html
    assert f'href="tel:{facts.crisis["lifeline_number"]}"' in html
    assert facts.phone in html and facts.name in html
    csp = response.headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    # Nothing on the page points a browser at another server.
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert url.startswith(("/", "#", "tel:", "mailto:", "sms:")), url
    assert not re.search(r"<script>|style=", html), "inline script or style on the page"
    for path in ("/widget/chat-widget.js", "/widget/chat-widget.css", "/widget/vendor/socket.io.min.js"):
        asset = requests.get(stack.web_url + path, timeout=10)
        assert asset.status_code == 200, path
        assert asset.headers["X-Content-Type-Options"] == "nosniff"
        assert asset.headers["Referrer-Policy"] == "no-referrer"


# ------------------------------------------------------------------------------------------ chatting


def test_a_question_gets_an_answer_with_disclosure_and_timestamps(stack: Stack, new_page: NewPage) -> None:
    page = new_page()
    page.goto(stack.web_url + "/")
    page.get_by_role("button", name="Chat with our assistant").click()
    # Focus moves into the chat so that typing can start at once.
    assert page.evaluate("() => document.activeElement.id") == page.get_by_label("Your message").get_attribute("id")
    expect_visible(page, "You are chatting with an automated assistant")
    greeting = wait_for_bot_text(page, GREETING)
    assert "not a person" in greeting
    before = send(page, "what can you help me with")
    wait_for_bot_text(page, CAPABILITIES, after=before)
    assert user_texts(page)[-1] == "what can you help me with"
    times = page.locator(".hlc-message time").evaluate_all("nodes => nodes.map(n => [n.dateTime, n.textContent])")
    assert len(times) >= 3
    for stamp, shown in times:
        datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        assert re.fullmatch(r"\d{1,2}:\d{2}\s?(AM|PM)?", shown.strip()), shown


def expect_visible(page: Page, text: str) -> None:
    assert page.get_by_text(text).first.is_visible(), f"{text!r} is not visible"


def test_a_quick_reply_sends_its_payload_and_shows_its_title(stack: Stack, new_page: NewPage) -> None:
    page = open_chat(new_page(), stack)
    replies = page.get_by_role("group", name="Suggested replies")
    replies.get_by_role("button", name="Therapy options").wait_for()
    before = len(bot_texts(page))
    replies.get_by_role("button", name="Therapy options").click()
    wait_for_bot_text(page, THERAPY_OPTIONS, after=before)
    assert user_texts(page)[-1] == "Therapy options"
    assert "/ask_therapy_options" not in page.locator(".hlc-log").inner_text()
    # Only the newest message offers replies, and focus went back to the message box.
    assert page.locator(".hlc-reply", has_text="Therapy options").count() == 0
    assert page.evaluate("() => document.activeElement.classList.contains('hlc-input')")


def test_a_risk_message_gets_988_and_911_and_a_safe_link(stack: Stack, new_page: NewPage) -> None:
    # Opened from the page's own "Ask our assistant" button (any element with data-chat-open).
    page = open_chat(new_page(), stack, via="Ask our assistant")
    before = send(page, "I want to kill myself")
    reply = wait_for_bot_text(page, "988", after=before)
    assert "911" in reply
    assert "automated assistant" in reply
    lifeline_chat = practice().crisis["lifeline_chat"]
    if lifeline_chat in reply:  # the acute reply names the chat site; it becomes a real, safe link
        link = page.locator(".hlc-from-bot a", has_text=lifeline_chat).last
        assert (link.get_attribute("href") or "").rstrip("/") == lifeline_chat.rstrip("/")
        assert link.get_attribute("rel") == "noopener noreferrer"
    expect_visible(page, "In danger now?")


def test_talk_to_a_person_sends_request_human(stack: Stack, new_page: NewPage) -> None:
    page = open_chat(new_page(), stack)
    before = len(bot_texts(page))
    page.get_by_role("button", name="Talk to a person", exact=True).last.click()
    reply = wait_for_bot_text(page, practice().phone, after=before)
    assert practice().email in reply
    assert user_texts(page)[-1] == "Talk to a person"
    phone_link = page.locator(".hlc-from-bot a", has_text=practice().phone).last
    assert phone_link.get_attribute("href") == "tel:" + re.sub(r"[^\d+]", "", practice().phone)


def test_user_text_is_shown_as_text_never_as_html(stack: Stack, new_page: NewPage) -> None:
    page = open_chat(new_page(), stack)
    attack = '<img src="/x" onerror="window.__injected = 1"><b>bold</b> <a href="javascript:alert(1)">x</a>'
    before = send(page, attack)
    wait_for_bot_text(page, "", after=before)
    assert user_texts(page)[-1] == attack
    log = page.locator(".hlc-log")
    assert log.locator("img, b, a[href^='javascript']").count() == 0
    assert page.evaluate("() => window.__injected") is None


def test_typing_indicator_shows_while_the_assistant_answers(stack: Stack, new_page: NewPage) -> None:
    page = open_chat(new_page(), stack)
    page.evaluate(
        """() => {
          window.__typingSeen = false;
          const typing = document.querySelector('.hlc-typing');
          new MutationObserver(() => {
            if (!typing.hidden && typing.textContent.includes('typing')) { window.__typingSeen = true; }
          }).observe(typing, {attributes: true, childList: true, subtree: true});
        }"""
    )
    before = send(page, "are you a bot?")
    wait_for_bot_text(page, "automated assistant", after=before)
    assert page.evaluate("() => window.__typingSeen") is True
    assert page.locator(".hlc-typing").is_hidden()


# ------------------------------------------------------------------------------------------ persistence


def test_history_survives_a_reload_and_clearing_removes_it(stack: Stack, new_page: NewPage) -> None:
    page = open_chat(new_page(), stack)
    before = send(page, "what can you help me with")
    wait_for_bot_text(page, CAPABILITIES, after=before)
    first = stored_state(page)
    assert first is not None and re.fullmatch(r"[0-9a-f]{32}", first["sessionId"])

    page.reload()
    # The chat reopens by itself with the same conversation, without asking the server.
    page.locator(".hlc-panel").wait_for(state="visible")
    assert "what can you help me with" in user_texts(page)
    assert any(CAPABILITIES in text for text in bot_texts(page))
    assert stored_state(page)["sessionId"] == first["sessionId"]  # type: ignore[index]

    page.get_by_role("button", name="End and clear conversation").click()
    expect_visible(page, "The conversation was cleared")
    assert user_texts(page) == []
    assert not any(CAPABILITIES in text for text in bot_texts(page))
    fresh = stored_state(page)
    assert fresh is not None and fresh["sessionId"] != first["sessionId"]
    assert re.fullmatch(r"[0-9a-f]{32}", fresh["sessionId"])
    assert "what can you help me with" not in json.dumps(fresh)
    assert page.evaluate("() => document.activeElement.classList.contains('hlc-input')")
    # The new session id is the one Rasa now talks to.
    wait_for_bot_text(page, GREETING)
    events = tracker_events(stack.rasa_url, stack.token, fresh["sessionId"])
    assert any(event.get("event") == "bot" for event in events)

    page.reload()
    page.locator(".hlc-panel").wait_for(state="visible")
    assert "what can you help me with" not in page.locator(".hlc-log").inner_text()


# ------------------------------------------------------------------------------------------ accessibility


def test_keyboard_only_use_with_visible_focus(stack: Stack, new_page: NewPage) -> None:
    page = new_page()
    page.goto(stack.web_url + "/")
    launcher_is_focused = "() => document.activeElement.classList.contains('hlc-launcher')"
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate(launcher_is_focused):
            break
    else:
        raise AssertionError("the chat launcher cannot be reached with Tab")
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    width = page.evaluate("() => parseFloat(getComputedStyle(document.activeElement).outlineWidth)")
    assert outline != "none" and width >= 2, "focused launcher has no visible focus ring"

    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.classList.contains('hlc-input')")
    wait_for_bot_text(page, GREETING)
    page.keyboard.type("what can you help me with")
    before = len(bot_texts(page))
    page.keyboard.press("Enter")
    wait_for_bot_text(page, CAPABILITIES, after=before)

    # A quick reply can be reached from the message box with Shift+Tab and used with Enter.
    page.get_by_role("button", name="Talk to a person", exact=True).first.wait_for()
    for _ in range(6):
        page.keyboard.press("Shift+Tab")
        if page.evaluate("() => document.activeElement.classList.contains('hlc-reply')"):
            break
    else:
        raise AssertionError("no quick reply reachable with Shift+Tab")
    before = len(bot_texts(page))
    page.keyboard.press("Enter")
    wait_for_bot_text(page, practice().phone, after=before)

    page.keyboard.press("Escape")
    assert page.locator(".hlc-panel").is_hidden()
    assert page.evaluate(launcher_is_focused), "focus did not return to the launcher"
    assert page.get_by_role("button", name="Chat with our assistant").get_attribute("aria-expanded") == "false"


def test_full_screen_chat_keeps_keyboard_focus_inside(stack: Stack, new_page: NewPage) -> None:
    """At 360 px the panel covers the page, so Tab must not wander onto the hidden page behind it."""
    page = new_page(width=360, height=740)
    page.goto(stack.web_url + "/")
    page.get_by_role("button", name="Chat with our assistant").click()
    wait_for_bot_text(page, GREETING)
    inside = "() => document.querySelector('.hlc-panel').contains(document.activeElement)"
    for key in ["Tab"] * 25 + ["Shift+Tab"] * 25:
        page.keyboard.press(key)
        assert page.evaluate(inside), f"focus left the full-screen chat after {key}"


def run_axe(page: Page) -> List[Dict[str, Any]]:
    # Evaluated through the DevTools protocol, so the page's CSP (no inline scripts) stays in force.
    page.evaluate(AXE_SCRIPT.read_text(encoding="utf-8"))
    result = page.evaluate(
        """async () => {
          const r = await axe.run(document, {runOnly: {type: 'tag',
            values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}});
          return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map(n => n.target.join(' '))}));
        }"""
    )
    return list(result)


@pytest.mark.parametrize(("label", "width", "height"), [("desktop", 1280, 860), ("mobile-360", 360, 740)])
def test_axe_finds_no_serious_or_critical_violations(
    stack: Stack, new_page: NewPage, label: str, width: int, height: int
) -> None:
    page = new_page(width=width, height=height)
    page.goto(stack.web_url + "/")
    closed = run_axe(page)
    page.get_by_role("button", name="Chat with our assistant").click()
    wait_for_bot_text(page, GREETING)
    before = send(page, "I want to kill myself")
    wait_for_bot_text(page, "988", after=before)
    opened = run_axe(page)
    report = {"closed": closed, "open": opened}
    out = SCREENSHOTS.parent / f"axe-{label}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    serious = [v for v in closed + opened if v["impact"] in ("serious", "critical")]
    assert not serious, json.dumps(serious, indent=2)


@pytest.mark.parametrize(
    ("label", "width", "height"),
    [("desktop", 1280, 860), ("mobile-360", 360, 740), ("zoom-200", 640, 400)],
)
def test_layout_fits_and_screenshots(stack: Stack, new_page: NewPage, label: str, width: int, height: int) -> None:
    """Desktop, a 360 px phone, and a 1280x800 laptop at 200% zoom (640x400 CSS pixels)."""
    page = new_page(width=width, height=height)
    page.goto(stack.web_url + "/")
    screenshot(page, f"{label}-page", full_page=True)
    page.get_by_role("button", name="Chat with our assistant").click()
    wait_for_bot_text(page, GREETING)
    before = send(page, "what can you help me with")
    wait_for_bot_text(page, CAPABILITIES, after=before)
    page.wait_for_timeout(300)
    screenshot(page, f"{label}-chat")
    no_sideways_scroll = "() => document.documentElement.scrollWidth <= window.innerWidth"
    assert page.evaluate(no_sideways_scroll), "the page scrolls sideways"
    panel = page.locator(".hlc-panel").bounding_box()
    assert panel is not None
    assert panel["x"] >= 0 and panel["x"] + panel["width"] <= width + 0.5
    for name in ("Your message", "Send"):
        control = page.get_by_label(name) if name == "Your message" else page.get_by_role("button", name=name)
        control.scroll_into_view_if_needed()
        box = control.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, name
        assert box["height"] >= 24, f"{name} is too small to tap"
    # After all that scrolling the crisis line is still on screen and nothing covers it.
    page.get_by_label("Your message").focus()
    page.wait_for_timeout(200)
    assert crisis_line_is_on_screen(page), f"{label}: the widget's crisis line is off screen or covered"


def crisis_line_is_on_screen(page: Page) -> bool:
    return bool(
        page.evaluate(
            """() => {
              const line = document.querySelector('.hlc-crisis');
              const box = line.getBoundingClientRect();
              if (box.top < 0 || box.bottom > window.innerHeight || box.height === 0) { return false; }
              const hit = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
              return line.contains(hit);
            }"""
        )
    )


def test_reduced_motion_stops_the_typing_animation(stack: Stack, new_page: NewPage) -> None:
    animation = "() => getComputedStyle(document.querySelector('.hlc-typing-dots span')).animationName"
    calm = new_page(reduced_motion="reduce")
    calm.goto(stack.web_url + "/")
    calm.locator(".hlc-launcher").wait_for()
    assert calm.evaluate(animation) == "none"
    moving = new_page()
    moving.goto(stack.web_url + "/")
    moving.locator(".hlc-launcher").wait_for()
    assert moving.evaluate(animation) == "hlc-pulse"


# ------------------------------------------------------------------------------------------ privacy


def test_every_request_went_to_the_local_servers(stack: Stack) -> None:
    """Each page's requests were checked when it closed; here: the recording really saw the traffic."""
    seen = stack.requests
    assert any(url.startswith(stack.web_url + "/widget/vendor/socket.io") for url in seen)
    assert any(url.startswith(stack.rasa_url.replace("http://", "ws://")) for url in seen), "no socket seen"
    origins = {re.match(r"^[a-z]+://[^/]+", url).group(0) for url in seen}  # type: ignore[union-attr]
    assert origins <= stack.local_origins(), origins


# ------------------------------------------------------------------------------------------ Rasa down (last)


def test_with_rasa_stopped_the_crisis_line_and_phone_stay_and_nothing_spins(stack: Stack, new_page: NewPage) -> None:
    phone = practice().phone
    page = open_chat(new_page(), stack)
    stack.stop_rasa()

    offline = page.locator(".hlc-connection-offline")
    offline.wait_for(state="visible", timeout=10_000)
    assert "can't be reached" in offline.inner_text() and phone in offline.inner_text()
    assert page.locator(".hlc-crisis").is_visible()
    assert page.locator(".hlc-typing").is_hidden()
    page.get_by_label("Your message").fill("hello?")
    page.get_by_label("Your message").press("Enter")
    assert "not sent" in offline.inner_text()
    assert page.get_by_label("Your message").input_value() == "hello?", "the unsent text was lost"
    screenshot(page, "rasa-down-chat")

    # A visitor arriving while the server is down: page, crisis line and phone, within a bounded time.
    fresh = new_page()
    fresh.goto(stack.web_url + "/")
    assert fresh.locator(".crisis-banner").is_visible()
    started = time.monotonic()
    fresh.get_by_role("button", name="Chat with our assistant").click()
    fresh.locator(".hlc-connection-offline").wait_for(state="visible", timeout=10_000)
    waited = time.monotonic() - started
    assert waited < 8, f"took {waited:.1f} s to say the assistant is unreachable"
    text = fresh.locator(".hlc-connection-offline").inner_text()
    assert phone in text and "911" in text and "988" in text
    assert fresh.locator(".hlc-typing").is_hidden()
    assert fresh.locator(".hlc-crisis").is_visible()
    fresh.wait_for_timeout(2_000)
    assert fresh.locator(".hlc-connection-offline").is_visible(), "the offline notice went away by itself"
