"""Start the production topology (nginx + Rasa processes on PostgreSQL/Redis/RabbitMQ) for tests."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Dict

import requests

from bot.ops.prod import Topology, build_topology, delete_event_queues
from bot.ops.scale import topology_env

# The tests' own database names and Redis db: nothing shared with other users of these services.
TEST_SERVICES = {
    "TRACKER_DB_NAME": "prod_test_tracker",
    "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/prod_test_app",
    "REDIS_LOCK_DB": "5",
    "REDIS_KEY_PREFIX": "prodtest",
}
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"


def start_topology(var_dir: Path, processes: int, overrides: Dict[str, str] | None = None) -> Topology:
    env = topology_env(processes, var_dir)
    env.update(TEST_SERVICES)
    # An exchange and queue of this run's own: the staff side consumes the queue, so two runs sharing
    # one would take each other's events. stop_topology() deletes them.
    tag = uuid.uuid4().hex[:10]
    env.update(RABBITMQ_EXCHANGE=f"prod-test-events-{tag}", RABBITMQ_QUEUE=f"prod_test_events_{tag}")
    env.update(CHAT_RATE_PER_MINUTE="120", CHAT_RATE_BURST="30")
    env.update(overrides or {})
    topology = build_topology(env)
    try:
        topology.start()
        topology.wait_until_ready(quiet=True)
    except BaseException:
        topology.stop()
        raise
    return topology


def stop_topology(topology: Topology) -> None:
    """Stops every process, then deletes this run's RabbitMQ queues and exchange."""
    topology.stop()
    delete_event_queues(topology.env)


def public_url(topology: Topology) -> str:
    return f"http://127.0.0.1:{topology.settings.public_port}"


def say(base_url: str, text: str, sender: str, session: requests.Session | None = None,
        timeout: float = 30) -> requests.Response:
    poster = session or requests
    return poster.post(f"{base_url}/webhooks/rest/webhook", json={"sender": sender, "message": text},
                       timeout=timeout)


def user_texts(topology: Topology, sender: str, process: int = 0) -> list:
    tracker = requests.get(f"{topology.rasa_url(process)}/conversations/{sender}/tracker",
                           params={"token": topology.token}, timeout=30).json()
    return [event.get("text") for event in tracker["events"] if event.get("event") == "user"]


def turns_are_whole(topology: Topology, sender: str) -> bool:
    """Each user message is followed by at least one bot message before the next user message."""
    tracker = requests.get(f"{topology.rasa_url(0)}/conversations/{sender}/tracker",
                           params={"token": topology.token}, timeout=30).json()
    answered = True
    for event in tracker["events"]:
        if event.get("event") == "user":
            if not answered:
                return False
            answered = False
        elif event.get("event") == "bot":
            answered = True
    return answered
