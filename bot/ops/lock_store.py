"""A Redis lock store whose queue operations are atomic, for several Rasa processes.

Rasa 3.6's RedisLockStore keeps each conversation's ticket queue as one JSON value that every process
reads, changes and writes back (issue_ticket, update_lock, cleanup). Two processes doing that at the same
moment overwrite each other's tickets, so both handle the same conversation at once; the scale test
caught a lost turn that way. Here each step is a single atomic Redis command: INCR hands out tickets,
a sorted set is the queue (lowest ticket is served), and a key with a lifetime marks each ticket alive,
so a process killed while holding the lock blocks the conversation for at most the lock lifetime.
Configured in endpoints.prod.yml as `type: bot.ops.lock_store.AtomicRedisLockStore`.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager, suppress
from typing import Any, AsyncIterator

from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

DEFAULT_WAIT_SECONDS = 0.1
# KEYS: the queue (sorted set), the ticket counter; ARGV: the alive keys' prefix, the lifetime in ms.
# Idle conversations leave nothing behind: every key expires.
ENQUEUE_SCRIPT = """
local ticket = redis.call('INCR', KEYS[2])
redis.call('SET', ARGV[1] .. ticket, 1, 'PX', ARGV[2])
redis.call('ZADD', KEYS[1], ticket, ticket)
redis.call('PEXPIRE', KEYS[1], ARGV[2] * 2)
redis.call('PEXPIRE', KEYS[2], ARGV[2] * 2)
return ticket
"""


class AtomicRedisLockStore(RedisLockStore):
    def __init__(self, endpoint_config: EndpointConfig | None = None, **kwargs: Any) -> None:
        if endpoint_config is not None:
            kwargs = {"host": endpoint_config.url or "localhost", **endpoint_config.kwargs, **kwargs}
        super().__init__(**kwargs)

    def _keys(self, conversation_id: str) -> tuple[str, str]:
        return f"{self.key_prefix}q:{conversation_id}", f"{self.key_prefix}n:{conversation_id}"

    def _alive_prefix(self, conversation_id: str) -> str:
        return f"{self.key_prefix}alive:{conversation_id}:"

    def _alive_key(self, conversation_id: str, ticket: int) -> str:
        return f"{self._alive_prefix(conversation_id)}{ticket}"

    def _enqueue(self, conversation_id: str, lifetime: float) -> int:
        queue, counter = self._keys(conversation_id)
        lifetime_ms = max(1, int(lifetime * 1000))
        # One script, so one atomic step: with INCR and ZADD as separate commands, a later ticket could be
        # queued (and served, being alone) before an earlier one, and then both processes held the lock.
        ticket = self.red.eval(ENQUEUE_SCRIPT, 2, queue, counter, self._alive_prefix(conversation_id), lifetime_ms)
        return int(ticket)

    def _dequeue(self, conversation_id: str, ticket: int) -> None:
        queue, _ = self._keys(conversation_id)
        pipeline = self.red.pipeline(transaction=True)
        pipeline.zrem(queue, str(ticket))
        pipeline.delete(self._alive_key(conversation_id, ticket))
        pipeline.execute()

    async def _wait_for_turn(self, conversation_id: str, ticket: int, wait_seconds: float, lifetime: float) -> None:
        queue, _ = self._keys(conversation_id)
        deadline = time.monotonic() + lifetime
        while True:
            head = self.red.zrange(queue, 0, 0)
            if not head or int(head[0]) == ticket:
                return
            if not self.red.exists(self._alive_key(conversation_id, int(head[0]))):
                self.red.zrem(queue, head[0])  # its holder died or overran its lifetime
                continue
            if time.monotonic() > deadline:
                raise LockError(f"Could not acquire lock for conversation_id '{conversation_id}'.")
            await asyncio.sleep(wait_seconds)

    @asynccontextmanager
    async def lock(
        self,
        conversation_id: str,
        lock_lifetime: float = LOCK_LIFETIME,
        wait_time_in_seconds: float = DEFAULT_WAIT_SECONDS,
    ) -> AsyncIterator[None]:
        try:
            ticket = self._enqueue(conversation_id, lock_lifetime)
        except Exception as error:  # Redis unreachable: the same error type Rasa's lock stores raise
            raise LockError(f"Error while acquiring lock ({type(error).__name__}).") from error
        try:
            try:
                await self._wait_for_turn(conversation_id, ticket, wait_time_in_seconds, lock_lifetime)
            except LockError:
                raise
            except Exception as error:
                raise LockError(f"Error while waiting for the lock ({type(error).__name__}).") from error
            yield None
        finally:
            with suppress(Exception):  # if Redis is gone, the ticket's lifetime frees the conversation
                self._dequeue(conversation_id, ticket)
