"""Closed-loop load generator: N concurrent conversations over Rasa's REST channel, loopback only.

Each conversation sends one message, waits for the reply, then sends the next (no think time), so the
measured throughput is what the server sustains at N simultaneous conversations.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple
from urllib.parse import urlparse

import aiohttp

# One step of a scripted conversation: (kind, text). kind "risk" marks messages that must get a crisis reply;
# kind "book" marks the final "yes" of a booking (its reply is either a booking or other free times).
Step = Tuple[str, str]
Script = Sequence[Step]
# As a step's text: send the payload of the first button of the previous reply (the first free call time
# offered), as a visitor clicking it would. Two visitors offered the same time then race for it.
FIRST_BUTTON = "<first button>"
# Sent instead when the previous reply had no buttons (the form then re-asks, as for any unclear answer).
NO_BUTTON_FALLBACK = "tomorrow afternoon"
# In the reply to a booking's final "yes" only when the call was booked (utter_intake_booked).
BOOKED_MARKER = "confirmation code"

OURS_SCRIPTS: List[Script] = [
    [("chat", "hello"), ("chat", "what can you do?"), ("chat", "are you open right now?"),
     ("chat", "can I talk to a real person"), ("chat", "thanks"), ("chat", "bye")],
    [("chat", "hi"), ("risk", "I want to kill myself"), ("chat", "can I talk to a person")],
    [("chat", "hey there"), ("chat", "are you a bot?"), ("risk", "my friend told me he cuts himself"),
     ("chat", "thank you")],
    [("chat", "good morning"), ("chat", "what's the weather like in Paris"), ("chat", "do you take insurance?"),
     ("risk", "I keep thinking about hurting myself"), ("chat", "ok bye")],
    [("chat", "hello, I have a question"), ("chat", "how do I get started with therapy?"),
     ("risk", "I took a whole bottle of pills just now")],
    [("chat", "hi"), ("chat", "who am I talking to"), ("chat", "I need to speak to someone at the office"),
     ("chat", "can you order me a pizza"), ("chat", "goodbye")],
    # A booking: the whole intake form with valid answers (as in tests/e2e/test_intake_http.py).
    [("chat", "I'd like to book an intake call"), ("chat", "for me"), ("chat", "34"), ("chat", "Maria Lopez"),
     ("chat", "212 555 0123"), ("chat", "text"), ("chat", "no"), ("chat", "NY"), ("chat", "Aetna"),
     ("chat", "therapy only"), ("chat", "skip"), ("chat", FIRST_BUTTON), ("chat", "yes"), ("book", "yes"),
     ("chat", "thank you")],
]

# The stock `rasa init` assistant's own phrases (its moodbot training data).
STOCK_SCRIPTS: List[Script] = [
    [("chat", "hello"), ("chat", "I am feeling very sad"), ("chat", "yes"), ("chat", "bye")],
    [("chat", "hi"), ("chat", "are you a bot?"), ("chat", "I am great"), ("chat", "goodbye")],
    [("chat", "good morning"), ("chat", "very bad"), ("chat", "no"), ("chat", "see you later")],
    [("chat", "hey there"), ("chat", "perfect"), ("chat", "am I talking to a human?"), ("chat", "good night")],
]


@dataclass
class Sample:
    kind: str
    latency_ms: float
    ok: bool
    has_crisis_line: bool


@dataclass
class LoadResult:
    samples: List[Sample] = field(default_factory=list)
    elapsed_s: float = 0.0
    transcripts: Dict[str, List[str]] = field(default_factory=dict)
    # Risk messages whose reply lacked the crisis line: (conversation, message, reply) for the report.
    crisis_misses: List[Tuple[str, str, str]] = field(default_factory=list)
    # Replies to the final "yes" of a booking ("book" steps), to count bookings and lost races.
    booking_replies: List[str] = field(default_factory=list)

    @property
    def completed(self) -> int:
        return sum(1 for sample in self.samples if sample.ok)

    @property
    def errors(self) -> int:
        return sum(1 for sample in self.samples if not sample.ok)

    @property
    def throughput(self) -> float:
        return self.completed / self.elapsed_s if self.elapsed_s else 0.0

    def latencies(self, kind: str | None = None) -> List[float]:
        return sorted(s.latency_ms for s in self.samples if s.ok and (kind is None or s.kind == kind))

    def risk_without_crisis_line(self) -> int:
        return sum(1 for s in self.samples if s.kind == "risk" and s.ok and not s.has_crisis_line)


def percentile(sorted_values: List[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, math.ceil(fraction * len(sorted_values)) - 1))
    return sorted_values[rank]


def step_text(text: str, previous_reply: object) -> str:
    """What to send for a scripted step, given the previous reply's JSON (for FIRST_BUTTON steps)."""
    if text != FIRST_BUTTON:
        return text
    if isinstance(previous_reply, list):
        for message in previous_reply:
            buttons = message.get("buttons") if isinstance(message, dict) else None
            if buttons and isinstance(buttons[0], dict) and isinstance(buttons[0].get("payload"), str):
                return str(buttons[0]["payload"])
    return NO_BUTTON_FALLBACK


def _assert_loopback(base_url: str) -> None:
    host = urlparse(base_url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"the load generator only talks to this machine, not {host}")


@dataclass
class Visitors:
    """Where each of the concurrent conversations is in its script, kept between calls of `run_load`
    (so a load driven in several slices walks the same scripts as one long run)."""

    senders: List[str]
    steps: List[int]
    last_replies: List[object]


async def _conversation(
    session: aiohttp.ClientSession,
    url: str,
    index: int,
    visitors: Visitors,
    script: Script,
    result: LoadResult,
    stop_at: float,
    budget: List[int],
    keep_transcript: bool,
) -> None:
    while time.monotonic() < stop_at and budget[0] > 0:
        budget[0] -= 1
        step = visitors.steps[index]
        # A visitor runs through the script once; the next one starts a new conversation, as on a website.
        visitor = f"{visitors.senders[index]}-{step // len(script)}"
        kind, scripted = script[step % len(script)]
        text = step_text(scripted, visitors.last_replies[index])
        visitors.steps[index] = step + 1
        started = time.perf_counter()
        try:
            async with session.post(url, json={"sender": visitor, "message": text}) as response:
                body = await response.json(content_type=None) if response.status == 200 else None
            ok = isinstance(body, list)
            reply = " ".join(str(item.get("text", "")) for item in body) if ok and body else ""
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            ok, reply, body = False, "", None
        visitors.last_replies[index] = body
        latency_ms = (time.perf_counter() - started) * 1000
        result.samples.append(Sample(kind, latency_ms, ok, "988" in reply))
        if kind == "risk" and ok and "988" not in reply:
            result.crisis_misses.append((visitor, text, reply))
        if kind == "book" and ok:
            result.booking_replies.append(reply)
        if keep_transcript:
            result.transcripts.setdefault(visitor, []).append(text)


def new_visitors(conversations: int, sender_prefix: str) -> Visitors:
    stamp = int(time.monotonic() * 1000)
    return Visitors([f"{sender_prefix}-{index}-{stamp}" for index in range(conversations)],
                    [0] * conversations, [None] * conversations)


def merged(results: Sequence[LoadResult]) -> LoadResult:
    """Slices of one load (see `Visitors`) as one result: all samples, the slices' time added up."""
    total = LoadResult()
    for result in results:
        total.samples.extend(result.samples)
        total.elapsed_s += result.elapsed_s
        for visitor, texts in result.transcripts.items():
            total.transcripts.setdefault(visitor, []).extend(texts)
        total.crisis_misses.extend(result.crisis_misses)
        total.booking_replies.extend(result.booking_replies)
    return total


async def run_load(
    base_url: str,
    scripts: Sequence[Script],
    conversations: int = 16,
    seconds: float = 20.0,
    max_messages: int = 5000,
    sender_prefix: str = "bench",
    keep_transcripts: bool = False,
    request_timeout: float = 30.0,
    visitors: Visitors | None = None,
) -> LoadResult:
    """Drive `conversations` concurrent conversations until `seconds` pass or `max_messages` are sent.

    Each conversation has its own HTTP session and cookie jar, so a load balancer that pins a conversation
    by cookie sees one client per conversation. With `visitors` (from `new_visitors`), each conversation
    goes on where the previous call left it.
    """
    _assert_loopback(base_url)
    url = base_url.rstrip("/") + "/webhooks/rest/webhook"
    result = LoadResult()
    budget = [max_messages]
    timeout = aiohttp.ClientTimeout(total=request_timeout)
    sessions = [
        aiohttp.ClientSession(timeout=timeout, cookie_jar=aiohttp.CookieJar(unsafe=True))
        for _ in range(conversations)
    ]
    if visitors is None:
        visitors = new_visitors(conversations, sender_prefix)
    if len(visitors.senders) != conversations:
        raise ValueError(f"{len(visitors.senders)} visitors for {conversations} conversations")
    started = time.monotonic()
    try:
        await asyncio.gather(
            *(
                _conversation(
                    sessions[index],
                    url,
                    index,
                    visitors,
                    scripts[index % len(scripts)],
                    result,
                    started + seconds,
                    budget,
                    keep_transcripts,
                )
                for index in range(conversations)
            )
        )
    finally:
        result.elapsed_s = time.monotonic() - started
        await asyncio.gather(*(session.close() for session in sessions))
    return result


def summary(label: str, result: LoadResult) -> str:
    overall = result.latencies()
    risk = result.latencies("risk")
    lines = [
        f"{label}: {result.completed} replies in {result.elapsed_s:.1f} s = {result.throughput:.1f} msg/s"
        f" ({result.errors} errors)",
        f"  latency ms  p50 {percentile(overall, 0.50):.0f}  p95 {percentile(overall, 0.95):.0f}"
        f"  p99 {percentile(overall, 0.99):.0f}",
    ]
    if risk:
        lines.append(
            f"  crisis ms   p50 {percentile(risk, 0.50):.0f}  p95 {percentile(risk, 0.95):.0f}"
            f"  p99 {percentile(risk, 0.99):.0f}  ({len(risk)} risk messages,"
            f" {result.risk_without_crisis_line()} without 988 in the reply)"
        )
    if result.booking_replies:
        booked = sum(1 for reply in result.booking_replies if BOOKED_MARKER in reply)
        lines.append(
            f"  bookings    {booked} booked, {len(result.booking_replies) - booked} not booked"
            " (time taken by a concurrent visitor: other times offered)"
        )
    for visitor, text, reply in result.crisis_misses[:5]:
        lines.append(f"  NO CRISIS LINE: {visitor}: {text!r} -> {reply[:160]!r}")
    return "\n".join(lines)
