"""Event source for production (`make run-prod`): the staff side consumes what Rasa publishes to RabbitMQ.

Rasa's event broker (`event_broker: type: pika` in endpoints.prod.yml) publishes every tracker event as
JSON, `{"sender_id": …, "event": "user", "timestamp": …, "text": …, "parse_data": {…}, …}`, to a fanout
exchange bound to RABBITMQ_QUEUE, and sets the message's app_id to the process's RASA_ENVIRONMENT.
Visitor messages (`"event": "user"`) go to the same `Watcher` decisions as the tracker-store poller's.

- Up to CONCURRENCY conversations are handled at once; one conversation's events in delivery order.
- Rasa publishes before it commits the turn, so the consumer waits (briefly) for the stored row: the
  decisions read tracker facts (paused? form? recent intents?) by the row's id, as the poller does.
  A visitor message still not stored 30 s after it was sent never will be (the turn failed): parked.
- At least once: a message is acked only after it was handled, skipped (already handled, from before
  the first start) or ignored (not a visitor message). A failure is retried after a growing pause at
  most `max_attempts` times in all, then the message is moved to the parking queue
  `<RABBITMQ_QUEUE>_parked` and logged: never dropped. The attempt count travels with the message (header
  ATTEMPTS_HEADER on the copy that goes back to the queue; a delivery RabbitMQ marks as redelivered — its
  consumer died or lost the connection holding it — counts as one more), so restarting the consumer
  does not give a poison message a fresh set of attempts. A redelivered event is skipped by
  the watcher's handled-event mark, so it never opens a second ticket or pauses twice.
- RabbitMQ down or restarted: the consumer reconnects with backoff (1, 2, 4 … 30 s), logging each try.
  Visitors never wait for any of this: Rasa publishes in the background and the turn does not wait.
- Pauses and replies go to the Rasa process that published the event (HANDOFF_RASA_PROCESSES maps
  app_id to its HTTP API): with sticky routing that process holds the visitor's socket.io connection.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping
from urllib.parse import urlsplit

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from bot.db import session_scope
from bot.handoff.config import HandoffSettings
from bot.handoff.models import WatcherCursor
from bot.handoff.rasa_api import ConversationControl
from bot.handoff.routing import RoutedControl, process_controls
from bot.handoff.transcript import TrackerEvent
from bot.handoff.watcher import Watcher

log = logging.getLogger(__name__)
SOURCE = "broker"
BASELINE_NAME = "broker_baseline"
PREFETCH = 20
CONCURRENCY = 4  # conversations handled at once (each handoff waits on a few calls to Rasa's HTTP API)
CONNECT_TIMEOUT_SECONDS = 5.0
RECONNECT_FIRST_SECONDS = 1.0
RECONNECT_MAX_SECONDS = 30.0
STORE_WAIT_SECONDS = 2.0
STORE_POLL_SECONDS = 0.05
# A visitor message still not stored this long after Rasa stamped it never will be (the turn failed, or
# the process died between publishing and committing): parked at once instead of retried.
NEVER_STORED_AFTER_SECONDS = 30.0
MAX_ATTEMPTS = 5
RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 8.0
ATTEMPTS_HEADER = "x-handoff-attempts"


class UndecodableMessage(ValueError):
    """Not an event Rasa publishes; retrying cannot help, so it is parked at once."""


class EventNotStored(RuntimeError):
    """The visitor message is not in the tracker store (yet): Rasa has not committed the turn."""


class EventNeverStored(RuntimeError):
    """The visitor message is old and still not in the tracker store: its turn was never saved."""


class ConnectionLost(ConnectionError):
    """RabbitMQ closed the connection or the channel."""


@dataclass(frozen=True)
class BrokerEvent:
    """What the staff side needs of one published event (the rest stays in the tracker store)."""

    sender_id: str
    type_name: str
    timestamp: float
    text: str | None
    intent_name: str | None
    publisher: str | None  # the Rasa process that published it (its RASA_ENVIRONMENT)


def decode(body: bytes, app_id: str | None = None) -> BrokerEvent:
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UndecodableMessage(f"not UTF-8 JSON ({type(error).__name__})") from None
    if not isinstance(payload, dict):
        raise UndecodableMessage("not a JSON object")
    sender_id, type_name, timestamp = payload.get("sender_id"), payload.get("event"), payload.get("timestamp")
    if not isinstance(sender_id, str) or not sender_id:
        raise UndecodableMessage("no sender_id")
    if not isinstance(type_name, str) or not type_name:
        raise UndecodableMessage("no event type")
    if isinstance(timestamp, bool) or not isinstance(timestamp, (int, float)):
        raise UndecodableMessage("no numeric timestamp")
    parse_data = payload.get("parse_data")
    intent = parse_data.get("intent") if isinstance(parse_data, dict) else None
    intent_name = intent.get("name") if isinstance(intent, dict) else None
    text = payload.get("text")
    return BrokerEvent(
        sender_id=sender_id,
        type_name=type_name,
        timestamp=float(timestamp),
        text=text if isinstance(text, str) else None,
        intent_name=intent_name if isinstance(intent_name, str) else None,
        publisher=app_id or None,
    )


@dataclass
class _ConversationLine:
    """One conversation's deliveries queue on its lock; forgotten when none holds or awaits it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    deliveries: int = 0


def display_address(url: str) -> str:
    """host:port only: the URL carries the password."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 5672}"


async def declare_queue(channel: AbstractChannel, exchange_name: str, queue_name: str) -> AbstractQueue:
    """The exchange and queue exactly as Rasa's broker declares them, so whichever side starts first works."""
    exchange = await channel.declare_exchange(exchange_name, aio_pika.ExchangeType.FANOUT)
    queue = await channel.declare_queue(queue_name, durable=True)
    await queue.bind(exchange, "")
    return queue


def attempts_made(message: AbstractIncomingMessage) -> int:
    """Failed attempts before this delivery: the count the message carries, plus one if RabbitMQ
    redelivers it (the consumer that held it died or lost its connection, perhaps on this very message)."""
    raw = (message.headers or {}).get(ATTEMPTS_HEADER, 0)
    try:
        carried = max(0, int(raw))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        carried = 0
    return carried + (1 if message.redelivered else 0)


class BrokerConsumer:
    def __init__(
        self,
        settings: HandoffSettings,
        watcher: Watcher,
        *,
        controls: Mapping[str, ConversationControl] | None = None,
        store_wait_seconds: float = STORE_WAIT_SECONDS,
        never_stored_after_seconds: float = NEVER_STORED_AFTER_SECONDS,
        max_attempts: int = MAX_ATTEMPTS,
        retry_first_seconds: float = RETRY_FIRST_SECONDS,
        reconnect_max_seconds: float = RECONNECT_MAX_SECONDS,
    ) -> None:
        self.settings = settings
        self.watcher = watcher
        self.reader = watcher.reader
        self.controls: Mapping[str, ConversationControl] = (
            controls if controls is not None else process_controls(settings)
        )
        self.store_wait_seconds = store_wait_seconds
        self.never_stored_after_seconds = never_stored_after_seconds
        self.max_attempts = max_attempts
        self.retry_first_seconds = retry_first_seconds
        self.reconnect_max_seconds = reconnect_max_seconds
        self.parking_queue = f"{settings.broker_queue}_parked"
        self.address = display_address(settings.broker_url)
        self.connected = threading.Event()  # set while consuming (tests and health checks)
        self.counts: Counter[str] = Counter()  # handled, skipped, ignored, requeued, parked, connections
        self._baseline: int | None = None
        self._channel: AbstractChannel | None = None
        self._slots: asyncio.Semaphore | None = None
        self._conversations: Dict[str, _ConversationLine] = {}
        self._failures = 0

    # --- handling one message (synchronous: runs in a worker thread) -------------------------------
    def process(self, event: BrokerEvent) -> str:
        """handled | skipped | ignored; raises when the event could not be handled (then it is retried)."""
        if event.type_name != "user":
            return "ignored"
        stored = self._wait_until_stored(event)
        if stored.id <= self._ensure_baseline():
            return "skipped"  # from before the staff side first consumed this queue
        control = self.controls.get(event.publisher or "")
        routed = RoutedControl(control, self.watcher.rasa) if control is not None else None
        return "handled" if self.watcher.handle(stored, SOURCE, routed, event.publisher) else "skipped"

    def _wait_until_stored(self, event: BrokerEvent) -> TrackerEvent:
        deadline = time.monotonic() + self.store_wait_seconds
        while True:
            stored = self.reader.find_user_message(event.sender_id, event.timestamp, event.text)
            if stored is not None:
                return stored
            age = time.time() - event.timestamp
            if age >= self.never_stored_after_seconds:
                raise EventNeverStored(f"not in the tracker store {age:.0f} s after it was sent")
            if time.monotonic() >= deadline:
                raise EventNotStored(f"no stored visitor message at {event.timestamp} in this conversation")
            time.sleep(STORE_POLL_SECONDS)

    def _ensure_baseline(self) -> int:
        """On the very first start, events already in the tracker store are not turned into tickets (as
        the poller's first cursor): a queue that filled up before anyone consumed it is history."""
        if self._baseline is None:
            with session_scope(self.settings.database_url) as session:
                row = session.get(WatcherCursor, BASELINE_NAME)
                if row is None:
                    row = WatcherCursor(name=BASELINE_NAME, last_event_id=self.reader.max_event_id())
                    session.add(row)
                self._baseline = int(row.last_event_id)
        return self._baseline

    # --- delivery: ack, retry, park ------------------------------------------------------------------
    async def on_message(self, message: AbstractIncomingMessage) -> None:
        assert self._slots is not None
        try:
            event = decode(message.body, message.app_id)
        except UndecodableMessage as error:  # retrying cannot help
            log.error("handoff: event on %s cannot be handled (%s); parked", self.settings.broker_queue, error)
            await self._park(message, f"{type(error).__name__}: {error}")
            return
        if event.type_name != "user":  # nothing to do: no database, no waiting
            if await self._settle(message.ack()):
                self.counts["ignored"] += 1
            return
        # One conversation's events in delivery order (asyncio locks are first come, first served);
        # different conversations side by side, so one slow handoff does not hold up the others.
        line = self._conversations.setdefault(event.sender_id, _ConversationLine())
        line.deliveries += 1
        try:
            async with line.lock, self._slots:
                delay = await self._handle(message, event)
        finally:
            line.deliveries -= 1
            if line.deliveries == 0:
                del self._conversations[event.sender_id]
        if delay is None:
            return
        # Waits outside the line: the events behind this one are handled meanwhile.
        await asyncio.sleep(delay)
        await self._requeue(message)

    async def _handle(self, message: AbstractIncomingMessage, event: BrokerEvent) -> float | None:
        """Acks or parks the message; returns the delay before requeueing it when it is to be retried."""
        try:
            outcome = await asyncio.to_thread(self.process, event)
        except EventNeverStored as error:  # retrying cannot help
            log.error("handoff: event on %s cannot be handled (%s); parked", self.settings.broker_queue, error)
            await self._park(message, f"{type(error).__name__}: {error}")
            return None
        except Exception as error:
            delay = self._retry_delay(attempts_made(message) + 1, error)
            if delay is None:
                await self._park(message, f"{type(error).__name__}: {error}")
            return delay
        if await self._settle(message.ack()):
            self.counts[outcome] += 1
        return None

    def _retry_delay(self, attempt: int, error: Exception) -> float | None:
        """Seconds before the event goes back to the queue, or None when its attempts are used up."""
        reason = f"{type(error).__name__}: {error}"
        if attempt < self.max_attempts:
            delay = min(RETRY_MAX_SECONDS, self.retry_first_seconds * 2 ** (attempt - 1))
            log.warning(
                "handoff: event not handled (attempt %s of %s): %s; back in the queue in %.1f s",
                attempt, self.max_attempts, reason, delay,
            )
            return delay
        log.error(
            "handoff: event not handled after %s attempts (%s); moved to queue %s for a person to look at",
            attempt, reason, self.parking_queue,
        )
        return None

    async def _requeue(self, message: AbstractIncomingMessage) -> None:
        """Back to the end of the queue as a copy that carries its attempt count, then the original is acked.

        A copy rather than a nack: RabbitMQ keeps no count on a requeued message of a classic queue, and a
        count kept in this process was lost with it. Published before the ack, so a crash in between
        leaves a duplicate (skipped by the handled-event mark), never a loss."""
        assert self._channel is not None
        headers = {**(message.headers or {}), ATTEMPTS_HEADER: attempts_made(message) + 1}
        again = aio_pika.Message(
            message.body, headers=headers, app_id=message.app_id, delivery_mode=aio_pika.DeliveryMode.PERSISTENT
        )
        try:
            await self._channel.default_exchange.publish(again, routing_key=self.settings.broker_queue)
        except Exception as error:  # the redelivery of the unacked original counts the attempt instead
            log.warning("handoff: could not put an event back in the queue (%s); RabbitMQ will redeliver it", error)
            await self._settle(message.nack(requeue=True))
            return
        if await self._settle(message.ack()):
            self.counts["requeued"] += 1

    async def _park(self, message: AbstractIncomingMessage, reason: str) -> None:
        """Kept in a durable queue of its own, then acked: the event is neither lost nor retried forever."""
        assert self._channel is not None
        parked = aio_pika.Message(
            message.body,
            headers={
                "x-parked-reason": reason[:300],
                "x-original-queue": self.settings.broker_queue,
                ATTEMPTS_HEADER: attempts_made(message) + 1,
            },
            app_id=message.app_id,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        try:
            await self._channel.default_exchange.publish(parked, routing_key=self.parking_queue)
        except Exception as error:  # not parked: leave it in the main queue rather than lose it
            log.error("handoff: could not park an event (%s); it stays in the queue", error)
            await self._settle(message.nack(requeue=True))
            return
        if await self._settle(message.ack()):
            self.counts["parked"] += 1

    @staticmethod
    async def _settle(operation: Any) -> bool:
        try:
            await operation
            return True
        except Exception as error:  # the connection went away: RabbitMQ redelivers the unacked message
            log.warning("handoff: could not ack/nack (%s); RabbitMQ will deliver the event again", error)
            return False

    # --- connection ------------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Consumes until `stop` is set, reconnecting with backoff whenever RabbitMQ goes away."""
        self._slots = asyncio.Semaphore(CONCURRENCY)
        while not stop.is_set():
            try:
                await self._consume(stop)
            except Exception as error:
                self._failures += 1
                delay = min(self.reconnect_max_seconds, RECONNECT_FIRST_SECONDS * 2 ** (self._failures - 1))
                log.warning(
                    "handoff: not consuming from the event broker at %s (%s: %s); trying again in %.0f s (attempt %s)",
                    self.address, type(error).__name__, error, delay, self._failures,
                )
                with suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)

    async def _consume(self, stop: asyncio.Event) -> None:
        await asyncio.to_thread(self._ensure_baseline)  # before the first delivery (needs the database)
        connection = await aio_pika.connect(self.settings.broker_url, timeout=CONNECT_TIMEOUT_SECONDS)
        lost: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def on_close(_sender: Any, error: BaseException | None = None) -> None:
            if not lost.done():
                lost.set_result(error)

        connection.close_callbacks.add(on_close)
        try:
            channel = await connection.channel()
            channel.close_callbacks.add(on_close)
            await channel.set_qos(prefetch_count=PREFETCH)
            queue = await declare_queue(channel, self.settings.broker_exchange, self.settings.broker_queue)
            await channel.declare_queue(self.parking_queue, durable=True)
            self._channel = channel
            await queue.consume(self.on_message)
            self._failures = 0
            self.counts["connections"] += 1
            self.connected.set()
            log.info("handoff: consuming queue %s from the event broker at %s", queue.name, self.address)
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait([lost, stopping], return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not stop.is_set():
                raise ConnectionLost(f"RabbitMQ closed the connection ({lost.result() or 'no reason given'})")
        finally:
            self.connected.clear()
            if not connection.is_closed:
                with suppress(Exception):
                    await connection.close()


class ConsumerThread:
    """Runs a BrokerConsumer on its own event loop in a daemon thread (the website's loop stays free)."""

    def __init__(self, consumer: BrokerConsumer) -> None:
        self.consumer = consumer
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._main, name="handoff-broker", daemon=True)

    def _main(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._started.set()
        await self.consumer.run(self._stop)

    def start(self) -> None:
        self._thread.start()
        self._started.wait(timeout=5)

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None:
            stop_event: Callable[[], None] = self._stop.set
            with suppress(RuntimeError):  # the loop has already finished
                self._loop.call_soon_threadsafe(stop_event)
        self._thread.join(timeout=timeout)
