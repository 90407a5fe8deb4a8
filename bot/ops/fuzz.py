"""Random and hostile chat inputs for the fuzz test (tests/e2e/test_fuzz.py; `make fuzz` sends 10,000).

Each case is a request body for Rasa's REST channel: very long text, binary junk, emoji, right-to-left
and invisible characters, SQL and HTML injection, `/intent{...}` payloads, malformed JSON and wrong
types. Risk-worded cases are marked: their reply must contain the crisis line.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, List

import aiohttp

RISK_PHRASES = [
    "I want to kill myself",
    "I keep thinking about hurting myself",
    "I took a whole bottle of pills just now",
]
INJECTIONS = [
    "'; DROP TABLE events; --",
    "\" OR 1=1 --",
    "1; SELECT pg_sleep(10); --",
    "<script>alert(document.cookie)</script>",
    "<img src=x onerror=alert(1)>",
    "{{7*7}} ${7*7} #{7*7}",
    "../../../../etc/passwd",
    "%s%s%s%n",
    "\x00\x00\x00",
]
INTENT_PAYLOADS = [
    "/greet",
    "/risk_acute",
    "/request_human",
    "/nonexistent_intent",
    "/greet{\"name\": \"x\"}",
    "/greet{not json",
    "/restart",
    "/session_start",
    "/action_listen",
    "/out_of_scope{\"a\": [1, 2, {\"b\": null}]}",
    "/" + "a" * 300,
    "/greet{\"" + "k" * 100 + "\": \"" + "v" * 1000 + "\"}",
    "/greet@0.9",
    "/risk_acute{\"requested_slot\": \"'; DROP TABLE events; --\"}",
]
DECORATIONS = ["{}", "{} 😢", "  {}  ", "{}!!!", "hi, {}", "{}\n", "\u200b{}\u200b"]
SCRIPTS = [
    "مرحبا، هل يمكنني التحدث مع شخص؟",
    "שלום, אני צריך עזרה",
    "\u202eevil text reversed\u202c",
    "👩‍👩‍👧‍👦🏳️‍🌈🔥" * 20,
    "Z̷̢̛̖̈a̶͇̿l̴̰̈́g̵̰̈o̵͙͑",
    "日本語のテキスト",
    "\ufeff\ufffe\uffff",
]


@dataclass
class Case:
    body: bytes
    risk: bool = False
    label: str = ""


def _json_body(sender: str, message: Any) -> bytes:
    return json.dumps({"sender": sender, "message": message}).encode("utf-8")


def make_cases(count: int, seed: int = 8) -> List[Case]:
    """`count` cases drawn from every category in turn (deterministic for a given seed)."""
    rng = random.Random(seed)

    def text_case(index: int) -> Case:
        sender = f"fuzz-{seed}-{index}"
        kind = index % 12
        if kind == 0:
            return Case(_json_body(sender, rng.choice(DECORATIONS).format(rng.choice(RISK_PHRASES))), True, "risk")
        if kind == 1:
            size = rng.choice([500, 4000, 15000, 40000, 200000])
            return Case(_json_body(sender, rng.choice("ab é😀") * size), label=f"long-{size}")
        if kind == 2:
            junk = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 2000)))
            return Case(_json_body(sender, junk.decode("latin-1")), label="binary-as-text")
        if kind == 3:
            return Case(junk_body(rng), label="raw-junk-body")
        if kind == 4:
            return Case(_json_body(sender, rng.choice(INJECTIONS)), label="injection")
        if kind == 5:
            return Case(_json_body(sender, rng.choice(INTENT_PAYLOADS)), label="intent-payload")
        if kind == 6:
            return Case(_json_body(sender, rng.choice(SCRIPTS)), label="scripts")
        if kind == 7:
            lone = "".join(chr(rng.choice([0xD800, 0xDBFF, 0xDC00, rng.randint(0, 0x1F)])) for _ in range(20))
            return Case(json.dumps({"sender": sender, "message": "x" + lone}).encode("ascii"), label="surrogates")
        if kind == 8:
            wrong: Any = rng.choice([None, 42, 3.5, True, [], ["hi"], {"text": "hi"}, ""])
            return Case(_json_body(sender, wrong), label="wrong-type")
        if kind == 9:
            weird_sender: Any = rng.choice([None, 7, "", "x" * 5000, "../../etc", "a/b?c#d", "🙂", ["s"]])
            return Case(json.dumps({"sender": weird_sender, "message": "hello"}).encode(), label="weird-sender")
        if kind == 10:
            return Case(rng.choice([b"", b"{", b"[]", b"null", b"{\"message\": \"hi\"}", b"\xff\xfe{}"]),
                        label="malformed-json")
        words = [rng.choice(["help", "therapy", "insurance", "😀", "DROP", "<b>", "كلمة", "\t", "..."])
                 for _ in range(rng.randint(1, 30))]
        return Case(_json_body(sender, " ".join(words)), label="word-salad")

    return [text_case(index) for index in range(count)]


def junk_body(rng: random.Random) -> bytes:
    return bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 3000)))


@dataclass
class FuzzReport:
    statuses: Counter = field(default_factory=Counter)
    server_errors: List[str] = field(default_factory=list)
    risk_without_crisis_line: List[str] = field(default_factory=list)
    transport_errors: List[str] = field(default_factory=list)

    def describe(self) -> str:
        return (
            f"statuses {dict(sorted(self.statuses.items()))}; 5xx {len(self.server_errors)}; "
            f"risk without 988 {len(self.risk_without_crisis_line)}; transport errors {len(self.transport_errors)}"
        )


async def send_cases(base_url: str, cases: List[Case], concurrency: int = 8, timeout: float = 30.0) -> FuzzReport:
    report = FuzzReport()
    queue: asyncio.Queue[Case | None] = asyncio.Queue()
    for case in cases:
        queue.put_nowait(case)
    url = base_url.rstrip("/") + "/webhooks/rest/webhook"

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            case = queue.get_nowait()
            if case is None:
                return
            try:
                async with session.post(url, data=case.body, headers={"Content-Type": "application/json"}) as reply:
                    status = reply.status
                    body = await reply.text(errors="replace")
            except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                report.transport_errors.append(f"{case.label}: {type(error).__name__}")
                continue
            report.statuses[status] += 1
            if status >= 500:
                report.server_errors.append(f"{case.label}: {status}")
            if case.risk and (status != 200 or "988" not in _reply_text(body)):
                report.risk_without_crisis_line.append(case.label)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return report


def _reply_text(body: str) -> str:
    try:
        replies: List[Dict[str, Any]] = json.loads(body)
        return " ".join(str(item.get("text", "")) for item in replies)
    except (ValueError, AttributeError, TypeError):
        return ""
