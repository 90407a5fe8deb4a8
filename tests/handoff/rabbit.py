"""The real RabbitMQ on 127.0.0.1:5672 for the broker tests: throwaway queues, publishing as Rasa does,
and a TCP proxy in front of it that a test can cut to play an outage without touching the shared server."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Tuple

import aio_pika
from rasa.shared.core.events import Event

from bot.handoff.broker import declare_queue

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"
RABBITMQ_ADDRESS = ("127.0.0.1", 5672)


def unreachable_reason() -> str | None:
    """Why the real broker cannot be used, or None when it answers."""

    async def check() -> None:
        connection = await aio_pika.connect(RABBITMQ_URL, timeout=3)
        await connection.close()

    try:
        asyncio.run(check())
    except Exception as error:
        return f"RabbitMQ is not reachable at 127.0.0.1:5672 ({type(error).__name__}: {error})"
    return None


def rasa_body(sender: str, event: Event) -> bytes:
    """Byte for byte what Rasa's tracker store hands its pika broker: sender_id plus the event's dict."""
    return json.dumps({"sender_id": sender, **event.as_dict()}).encode("utf-8")


@dataclass
class ThrowawayQueues:
    """A fanout exchange and its queue with names of their own, declared as Rasa declares them."""

    exchange: str
    queue: str

    @classmethod
    def fresh(cls) -> ThrowawayQueues:
        tag = uuid.uuid4().hex[:12]
        made = cls(exchange=f"test-handoff-{tag}", queue=f"test_handoff_{tag}")
        made._run(made._declare)
        return made

    @property
    def parked(self) -> str:
        return f"{self.queue}_parked"

    def _run(self, work: Callable[[aio_pika.abc.AbstractChannel], Any]) -> Any:
        async def inside() -> Any:
            connection = await aio_pika.connect(RABBITMQ_URL, timeout=5)
            async with connection:
                return await work(await connection.channel())

        return asyncio.run(inside())

    async def _declare(self, channel: aio_pika.abc.AbstractChannel) -> None:
        await declare_queue(channel, self.exchange, self.queue)

    def publish(self, body: bytes, app_id: str | None = None) -> None:
        async def send(channel: aio_pika.abc.AbstractChannel) -> None:
            exchange = await channel.get_exchange(self.exchange)
            message = aio_pika.Message(body, app_id=app_id, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            await exchange.publish(message, routing_key="")

        self._run(send)

    def waiting(self, queue: str) -> int:
        """Messages ready in a queue (0 if it does not exist)."""

        async def count(channel: aio_pika.abc.AbstractChannel) -> int:
            declared = await channel.declare_queue(queue, durable=True)
            return int(declared.declaration_result.message_count or 0)

        return int(self._run(count))

    def take_all(self, queue: str) -> List[Tuple[bytes, Dict[str, Any]]]:
        async def drain(channel: aio_pika.abc.AbstractChannel) -> List[Tuple[bytes, Dict[str, Any]]]:
            declared = await channel.declare_queue(queue, durable=True)
            taken = []
            while (message := await declared.get(no_ack=True, fail=False)) is not None:
                taken.append((message.body, dict(message.headers or {})))
            return taken

        return list(self._run(drain))

    def delete(self) -> None:
        async def remove(channel: aio_pika.abc.AbstractChannel) -> None:
            for name in (self.queue, self.parked):
                await channel.queue_delete(name)
            await channel.exchange_delete(self.exchange)

        self._run(remove)


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


class TcpProxy:
    """Forwards a local port to RabbitMQ; cut() drops every connection and stops listening (an outage)."""

    def __init__(self, target: Tuple[str, int] = RABBITMQ_ADDRESS) -> None:
        self.target = target
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self._listener: socket.socket | None = None
        self._sockets: List[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            upstream = socket.create_connection(self.target, timeout=5)
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            with suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        if self._listener is not None:
            with suppress(OSError):  # wakes the thread blocked in accept(); close() alone would not
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for end in self._sockets:
                with suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()
            self._sockets.clear()
