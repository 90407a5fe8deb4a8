"""The production topology on one machine: two Rasa processes behind nginx, PostgreSQL, Redis, RabbitMQ."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, List

import pytest
import requests

from bot.ops.prod import Topology
from tests.e2e.ops_servers import PRIVATE_MESSAGE, private_text_in_logs
from tests.e2e.prod_topology import (
    RABBITMQ_URL,
    public_url,
    say,
    start_topology,
    stop_topology,
    turns_are_whole,
    user_texts,
)
from tests.e2e.test_http import listening_addresses

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    topology = start_topology(tmp_path_factory.mktemp("prod"), processes=2)
    yield topology
    stop_topology(topology)


def joined(response: requests.Response) -> str:
    return " ".join(reply.get("text", "") for reply in response.json())


def upstreams_of_chat_requests(topology: Topology) -> List[str]:
    log = topology.settings.log_dir / "nginx-access.log"
    return [line.rsplit('"', 2)[-2] for line in log.read_text().splitlines() if "/webhooks/rest/webhook" in line]


def test_a_conversation_stays_on_one_process_and_visitors_spread(prod: Topology) -> None:
    base = public_url(prod)
    pinned = requests.Session()
    before = len(upstreams_of_chat_requests(prod))
    sender = f"sticky-{uuid.uuid4()}"
    for text in ("hello", "what can you do?", "can I talk to a real person", "thanks"):
        assert say(base, text, sender, pinned).status_code == 200
    assert pinned.cookies.get("hl_route")
    assert len(set(upstreams_of_chat_requests(prod)[before:])) == 1
    before = len(upstreams_of_chat_requests(prod))
    for index in range(16):  # new visitors (no cookie) are spread over both processes
        assert say(base, "hi", f"spread-{index}-{uuid.uuid4()}").status_code == 200
    assert len(set(upstreams_of_chat_requests(prod)[before:])) == 2


def test_crisis_reply_through_the_load_balancer(prod: Topology) -> None:
    started = time.monotonic()
    response = say(public_url(prod), "I want to kill myself", f"crisis-{uuid.uuid4()}")
    assert response.status_code == 200 and "988" in joined(response)
    assert time.monotonic() - started < 2.0


def test_http_api_is_not_published_and_rasa_listens_on_loopback(prod: Topology) -> None:
    for path in ("/status", "/conversations/x/tracker", "/model", "/webhooks/socketio/webhook"):
        assert requests.get(public_url(prod) + path, timeout=10).status_code == 404
    for port in prod.settings.rasa_ports:
        assert requests.get(f"http://127.0.0.1:{port}/status", timeout=10).status_code == 401
        addresses = listening_addresses(port)
        assert addresses and all(address == "0100007F" for address in addresses), addresses


def test_oversized_message_gets_413_from_the_load_balancer(prod: Topology) -> None:
    response = say(public_url(prod), "a" * (prod.settings.max_body_bytes + 10), f"big-{uuid.uuid4()}")
    assert response.status_code == 413


def test_two_messages_racing_on_one_conversation_across_processes_are_handled_in_order(prod: Topology) -> None:
    """Sent at the same moment to different processes; Redis's lock makes one wait for the other."""
    senders = [f"race-{index}-{uuid.uuid4()}" for index in range(12)]

    def post(process: int, text: str, sender: str) -> requests.Response:
        return say(prod.rasa_url(process), text, sender)

    with ThreadPoolExecutor(max_workers=24) as pool:
        pairs = [(pool.submit(post, 0, "hello", sender), pool.submit(post, 1, "I want to kill myself", sender))
                 for sender in senders]
        results = [(greeting.result(timeout=60), crisis.result(timeout=60)) for greeting, crisis in pairs]
    for sender, (greeting, crisis) in zip(senders, results, strict=True):
        assert "automated assistant" in joined(greeting) and "988" not in joined(greeting).split("automated")[0]
        assert "988" in joined(crisis) and "911" in joined(crisis)
        assert sorted(user_texts(prod, sender)) == ["I want to kill myself", "hello"]
        assert turns_are_whole(prod, sender), f"{sender}: turns interleaved"


def test_kill_9_mid_conversation_keeps_the_history(prod: Topology) -> None:
    sender = f"kill-{uuid.uuid4()}"
    # Not "a person, please": the staff side would pause the conversation, and a REST client cannot
    # receive the crisis reply it then sends (README, "Handoff"); this test is about the history.
    sent = ["hello", "what can you do?", "how much does it cost?"]
    for text in sent:
        assert say(prod.rasa_url(0), text, sender).status_code == 200
    victim = prod.processes["rasa-1"]
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=10)
    # The conversation goes on at once on the other process (nginx skips the dead one) ...
    after = say(public_url(prod), "I want to kill myself", sender)
    assert after.status_code == 200 and "988" in joined(after)
    # ... and the restarted process has the whole history.
    prod.start_rasa(0)
    prod.wait_until_ready(quiet=True)
    assert user_texts(prod, sender, process=0) == [*sent, "I want to kill myself"]
    assert turns_are_whole(prod, sender)


def test_events_are_published_to_rabbitmq_and_the_staff_side_drains_the_queue(prod: Topology) -> None:
    import aio_pika

    sender = f"broker-{uuid.uuid4()}"

    async def watch() -> tuple[bool, int]:
        connection = await aio_pika.connect(RABBITMQ_URL, timeout=5)
        async with connection:
            channel = await connection.channel()
            # A copy of everything published (fanout), on a queue of this test's own.
            exchange = await channel.get_exchange(prod.env["RABBITMQ_EXCHANGE"])
            copy = await channel.declare_queue(exclusive=True, auto_delete=True)
            await copy.bind(exchange)
            response = await asyncio.to_thread(say, public_url(prod), "hello", sender)
            assert response.status_code == 200
            seen = False
            deadline = time.monotonic() + 10
            while not seen and time.monotonic() < deadline:
                message = await copy.get(no_ack=True, fail=False)
                if message is None:
                    await asyncio.sleep(0.2)
                else:
                    seen = sender.encode() in message.body
            waiting = -1
            while time.monotonic() < deadline + 5:  # the staff side's queue: consumed, nothing piles up
                staff_queue = await channel.declare_queue(prod.env["RABBITMQ_QUEUE"], durable=True, passive=True)
                waiting = int(staff_queue.declaration_result.message_count or 0)
                if waiting == 0:
                    break
                await asyncio.sleep(0.2)
            return seen, waiting

    assert asyncio.run(watch()) == (True, 0)


def test_a_risk_message_through_nginx_reaches_staff_through_the_broker(prod: Topology) -> None:
    """The ticket comes from the website's RabbitMQ consumer; this deployment has no tracker-store poller."""
    from bot.db import session_scope
    from bot.handoff.models import HandledEvent, Ticket

    sender = f"broker-risk-{uuid.uuid4()}"
    started = time.monotonic()
    response = say(public_url(prod), "I want to kill myself", sender)
    assert response.status_code == 200 and "988" in joined(response)  # from Rasa, not waiting for staff
    ticket = None
    while ticket is None and time.monotonic() - started < 10:
        with session_scope(prod.env["DATABASE_URL"]) as session:
            found = session.query(Ticket).filter(Ticket.conversation_id == sender).all()
            ticket = [(t.reason, t.risk_level, t.status) for t in found] or None
        time.sleep(0.1)
    elapsed = time.monotonic() - started
    assert ticket is not None and ticket[0][0] == "risk" and ticket[0][1] in ("imminent", "acute")
    assert len(ticket) == 1 and elapsed < 5, f"ticket after {elapsed:.1f} s"
    with session_scope(prod.env["DATABASE_URL"]) as session:
        marks = [(m.source, m.publisher) for m in session.query(HandledEvent).filter_by(conversation_id=sender)]
    assert marks in ([("broker", "rasa-1")], [("broker", "rasa-2")])  # consumed, stamped by its process
    web_log = (prod.settings.log_dir / "web.log").read_text()
    assert "watching new messages through the event broker" in web_log
    assert "through the tracker store" not in web_log
    assert f"consuming queue {prod.env['RABBITMQ_QUEUE']}" in web_log
    # The staff side paused the conversation on the process that handled it.
    deadline = time.monotonic() + 5
    events: list = []
    while "pause" not in events and time.monotonic() < deadline:
        tracker = requests.get(f"{prod.rasa_url(0)}/conversations/{sender}/tracker",
                               params={"token": prod.token}, timeout=30).json()
        events = [event.get("event") for event in tracker["events"]]
        time.sleep(0.2)
    assert "pause" in events


def test_socketio_chat_through_the_load_balancer_stays_on_one_process(prod: Topology) -> None:
    """Long polling makes many HTTP requests per conversation; each must reach the process holding the
    socket.io session, which the route cookie ensures (without it about half would fail)."""
    import aiohttp
    import socketio

    async def chat() -> List[str]:
        received: asyncio.Queue = asyncio.Queue()
        http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        client = socketio.AsyncClient(http_session=http, reconnection=False)
        client.on("bot_uttered", lambda data: received.put_nowait(str(data.get("text", ""))))
        session_id = uuid.uuid4().hex
        try:
            await client.connect(public_url(prod), transports=["polling"], wait_timeout=20)
            await client.emit("session_request", {"session_id": session_id})
            texts = []
            for message in ("hello", "can I talk to a real person", "I want to kill myself"):
                await client.emit("user_uttered", {"message": message, "session_id": session_id})
                texts.append(await asyncio.wait_for(received.get(), timeout=20))
                await asyncio.sleep(0.5)  # a few more polls, each of which must stick
                while not received.empty():
                    texts.append(received.get_nowait())
            return texts
        finally:
            await client.disconnect()
            await http.close()

    for _ in range(3):  # three browsers: with two processes, unsticky routing would break at least one
        texts = asyncio.run(chat())
        assert any("automated assistant" in text for text in texts)
        assert any("988" in text and "911" in text for text in texts)


def test_no_private_text_in_any_log(prod: Topology) -> None:
    sender = f"private-{uuid.uuid4()}"
    assert say(public_url(prod), PRIVATE_MESSAGE, sender).status_code == 200
    assert say(public_url(prod), "I want to kill myself. " + PRIVATE_MESSAGE, sender).status_code == 200
    assert private_text_in_logs([prod.settings.log_dir]) == []


def test_rate_limit_per_client_answers_429(prod: Topology) -> None:
    """Runs last: it uses up this client's allowance."""
    base = public_url(prod)
    statuses = [say(base, "hi", f"flood-{uuid.uuid4()}").status_code for _ in range(60)]
    assert statuses[0] == 200
    assert 429 in statuses
    assert set(statuses) <= {200, 429}
