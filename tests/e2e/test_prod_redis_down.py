"""Redis (the lock store) fails in the production topology: a quick, clear failure, then recovery."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest
import requests

from bot.ops.procs import free_port, wait_for_port
from bot.ops.prod import Topology
from tests.e2e.prod_topology import public_url, say, start_topology, stop_topology, user_texts

pytestmark = pytest.mark.e2e
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def start_redis(port: int, folder: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    assert wait_for_port(port, 10, process), "our own redis-server did not start"
    return process


@pytest.fixture(scope="module")
def redis_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory, redis_port: int) -> Iterator[Topology]:
    folder = tmp_path_factory.mktemp("redis")
    redis = start_redis(redis_port, folder)
    running = start_topology(tmp_path_factory.mktemp("prod-redis"), processes=1,
                             overrides={"REDIS_PORT": str(redis_port), "REDIS_LOCK_DB": "0"})
    running.redis = redis  # type: ignore[attr-defined]
    running.redis_folder = folder  # type: ignore[attr-defined]
    yield running
    stop_topology(running)
    if running.redis.poll() is None:  # type: ignore[attr-defined]
        running.redis.kill()  # type: ignore[attr-defined]


def test_redis_down_fails_fast_and_clearly_then_recovers(topology: Topology, redis_port: int) -> None:
    sender = f"redis-{uuid.uuid4()}"
    assert say(public_url(topology), "hello", sender).status_code == 200
    redis = topology.redis  # type: ignore[attr-defined]
    redis.kill()
    redis.wait(timeout=10)

    started = time.monotonic()
    failed = say(public_url(topology), "I want to kill myself", sender, timeout=30)
    assert time.monotonic() - started < 5, "the turn hung instead of failing"
    assert failed.status_code == 503 and "error" in failed.json()
    # The page, with its crisis banner, does not depend on Redis.
    page = requests.get(public_url(topology) + "/", timeout=10)
    assert page.status_code == 200 and "988" in page.text

    topology.redis = start_redis(redis_port, topology.redis_folder)  # type: ignore[attr-defined]
    recovered = say(public_url(topology), "I want to kill myself", sender)
    assert recovered.status_code == 200 and "988" in recovered.text
    assert user_texts(topology, sender) == ["hello", "I want to kill myself"]
