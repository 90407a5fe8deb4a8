"""AtomicRedisLockStore against the real Redis (127.0.0.1:6379): two processes' first messages of a new
conversation must never hold its lock together (a lost turn in the production race test)."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from typing import List, Tuple

import pytest
import redis

from bot.ops.lock_store import AtomicRedisLockStore

REDIS_DB = 5  # the production tests' Redis db; keys here have a prefix of their own


@pytest.fixture
def prefix() -> str:
    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.skip(f"Redis is not reachable at 127.0.0.1:6379 ({error}): this test needs the real server")
    return f"locktest{uuid.uuid4().hex[:8]}"


def store(prefix: str) -> AtomicRedisLockStore:
    return AtomicRedisLockStore(host="127.0.0.1", port=6379, db=REDIS_DB, key_prefix=prefix)


def test_two_processes_entering_a_new_conversation_at_once_take_turns(prefix: str) -> None:
    stores = [store(prefix), store(prefix)]  # one per Rasa process, each with its own connection
    held: List[Tuple[float, float]] = []
    rounds = 200

    def visit(index: int, conversation: str, start: threading.Barrier) -> None:
        async def one() -> None:
            start.wait()
            async with stores[index].lock(conversation, lock_lifetime=10, wait_time_in_seconds=0.005):
                entered = time.monotonic()
                await asyncio.sleep(0.01)
                held.append((entered, time.monotonic()))

        asyncio.run(one())

    for _ in range(rounds):
        conversation = f"new-{uuid.uuid4()}"
        start = threading.Barrier(2)
        threads = [threading.Thread(target=visit, args=(index, conversation, start)) for index in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=20)
    assert len(held) == 2 * rounds
    pairs = [sorted(held[index:index + 2]) for index in range(0, len(held), 2)]
    overlapping = [pair for pair in pairs if pair[1][0] < pair[0][1]]
    assert overlapping == [], f"{len(overlapping)} of {rounds} conversations had two holders at once"
