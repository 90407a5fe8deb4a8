"""RabbitMQ unreachable in the production topology: visitors' turns go on as before, and the staff side
catches up once it is back. The outage is a TCP proxy in front of the shared RabbitMQ being cut, so the
server itself (used by others) is never stopped."""

from __future__ import annotations

import time
import uuid
from typing import Iterator, List

import pytest

from bot.db import session_scope
from bot.handoff.models import HandledEvent, Ticket
from bot.ops.prod import Topology
from bot.safety.models import RiskEvent
from tests.e2e.ops_servers import PRIVATE_MESSAGE, private_text_in_logs
from tests.e2e.prod_topology import public_url, say, start_topology, stop_topology
from tests.handoff.rabbit import TcpProxy, unreachable_reason

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def proxy() -> Iterator[TcpProxy]:
    reason = unreachable_reason()
    if reason:
        pytest.skip(f"{reason}: this test needs the real broker")
    running = TcpProxy()
    running.start()
    yield running
    running.cut()


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory, proxy: TcpProxy) -> Iterator[Topology]:
    running = start_topology(tmp_path_factory.mktemp("prod-broker"), processes=1,
                             overrides={"RABBITMQ_PORT": str(proxy.port)})
    yield running
    stop_topology(running)


def tickets_of(topology: Topology, sender: str) -> List[tuple]:
    with session_scope(topology.env["DATABASE_URL"]) as session:
        found = session.query(Ticket).filter(Ticket.conversation_id == sender).all()
        return [(ticket.reason, ticket.risk_level) for ticket in found]


def seconds_until_ticket(topology: Topology, sender: str, timeout: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if tickets_of(topology, sender):
            return time.monotonic() - started
        time.sleep(0.2)
    return None


def replies(response: object) -> str:
    return " ".join(reply.get("text", "") for reply in response.json())  # type: ignore[attr-defined]


def test_a_broker_outage_never_reaches_visitors_and_staff_catch_up_after_it(
    topology: Topology, proxy: TcpProxy
) -> None:
    base = public_url(topology)
    web_log = topology.settings.log_dir / "web.log"
    # 1. Working: a request for a person is a ticket within seconds.
    before = f"before-{uuid.uuid4()}"
    assert say(base, "can I talk to a real person", before).status_code == 200
    waited = seconds_until_ticket(topology, before, 10)
    assert waited is not None and waited < 5, waited

    # 2. RabbitMQ unreachable: visitors are answered as fast as ever, crisis replies included.
    proxy.cut()
    during = f"during-{uuid.uuid4()}"
    started = time.monotonic()
    crisis = say(base, "I want to kill myself", during)
    elapsed = time.monotonic() - started
    assert crisis.status_code == 200 and "988" in replies(crisis) and elapsed < 2.0, elapsed
    greeting = say(base, "hello", f"hello-{uuid.uuid4()}")
    assert greeting.status_code == 200 and "automated assistant" in replies(greeting)
    assert say(base, PRIVATE_MESSAGE, f"private-{uuid.uuid4()}").status_code == 200
    deadline = time.monotonic() + 15
    while "not consuming from the event broker" not in web_log.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert f"not consuming from the event broker at 127.0.0.1:{proxy.port}" in web_log.read_text()
    assert tickets_of(topology, during) == []  # nobody hears of it while the broker is away

    # 3. Back: Rasa sends what it kept, the consumer reconnects, and the ticket opens.
    proxy.start()
    assert seconds_until_ticket(topology, during, 60) is not None, "no ticket after the broker came back"
    assert tickets_of(topology, during) == [("risk", "acute")] or tickets_of(topology, during) == [
        ("risk", "imminent")
    ]
    with session_scope(topology.env["DATABASE_URL"]) as session:
        sources = [mark.source for mark in session.query(HandledEvent).filter_by(conversation_id=during)]
        # Recorded apart from the broker too: what bot/handoff/reconcile.py opens a ticket from if it is lost.
        risk_records = session.query(RiskEvent).filter_by(conversation_id=during).count()
    assert sources == ["broker"]  # the reconciliation left it to the watcher: no second ticket
    assert risk_records == 1
    assert web_log.read_text().count(f"consuming queue {topology.env['RABBITMQ_QUEUE']}") >= 2
    # Rasa logged the events it could not publish, without what the visitors wrote.
    assert "failed Pika event" in (topology.settings.log_dir / "rasa-1.log").read_text()
    assert private_text_in_logs([topology.settings.log_dir]) == []
