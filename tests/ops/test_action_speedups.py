"""Adjustments 17 and 18 of bot/ops/rasa_main.py: debug-only deep copies (bot/ops/log_copies.py) and
custom action calls over kept connections (bot/ops/action_session.py) change speed, never behaviour."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import time
from types import ModuleType
from typing import Any, Awaitable, Callable, Dict, Iterator, List, Tuple

import pytest
import structlog
from aiohttp import web
from rasa.core.actions import action as rasa_action
from rasa.core.actions.action import ActionExecutionRejection, RemoteAction
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import SlotSet
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import RasaException
from rasa.utils.endpoints import EndpointConfig

from bot.ops import action_session, log_copies
from bot.ops.action_session import close_pooled_sessions, pooled, share_action_connections
from bot.ops.log_copies import DEBUG_COPY_MODULES, DebugOnlyCopy, copy_uses_outside_debug_logs

# ---------------------------------------------------------------------------------------------------
# 17. Deep copies for debug logs


@pytest.fixture
def structlog_config() -> Iterator[None]:
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def module_with_logger() -> ModuleType:
    module = ModuleType("fake_rasa_module")
    module.structlogger = structlog.get_logger()  # type: ignore[attr-defined]
    return module


@pytest.mark.parametrize("cached", [True, False])
def test_the_copy_is_real_with_debug_on_and_skipped_with_debug_off(structlog_config: None, cached: bool) -> None:
    value = {"states": [{"user": {"intent": "greet"}}], "events": [SlotSet("a", [1, 2])]}
    levels = [(logging.INFO, False), (logging.DEBUG, True), (logging.WARNING, False), (logging.NOTSET, True)]
    for level, copies in levels:
        structlog.configure(
            wrapper_class=structlog.make_filtering_bound_logger(level), cache_logger_on_first_use=cached
        )
        shim = DebugOnlyCopy(module_with_logger())
        copied = shim.deepcopy(value)
        if copies:
            assert copied is not value and copied["states"] is not value["states"], level
            assert copied["states"] == value["states"] and copied["events"][0] is not value["events"][0]
        else:
            assert copied is value, level
        assert shim.copy is importlib.import_module("copy").copy  # anything else: the real module


def test_the_copy_follows_rasas_own_logging_configuration(structlog_config: None) -> None:
    from rasa.utils.log_utils import configure_structlog

    value = [{"a": 1}]
    configure_structlog(logging.INFO)
    assert DebugOnlyCopy(module_with_logger()).deepcopy(value) is value
    configure_structlog(logging.DEBUG)  # `rasa run --debug`
    copied = DebugOnlyCopy(module_with_logger()).deepcopy(value)
    assert copied == value and copied is not value and copied[0] is not value[0]


def test_an_unconfigured_or_unknown_logger_gets_real_copies(structlog_config: None) -> None:
    structlog.reset_defaults()  # structlog's default: every level is processed
    value = {"a": [1]}
    assert DebugOnlyCopy(module_with_logger()).deepcopy(value) is not value
    assert DebugOnlyCopy(ModuleType("no_logger")).deepcopy(value) is not value


def test_the_patched_rasa_modules_use_deepcopy_only_inside_structlogger_debug_calls() -> None:
    for name in DEBUG_COPY_MODULES:
        source = inspect.getsource(importlib.import_module(name))
        assert copy_uses_outside_debug_logs(source) == [], name
        assert source.count("copy.deepcopy(") >= 1, name


@pytest.mark.parametrize(
    "source",
    [
        "import copy\nx = copy.deepcopy(y)\n",  # feeds real logic
        "import copy\nstructlogger.info('e', x=copy.deepcopy(y))\n",  # kept at info level
        "import copy\nstructlogger.debug('e', x=len(copy.deepcopy(y)))\n",  # nested in something else
        "import copy\nstructlogger.debug('e', x=copy.copy(y))\n",
        "import copy\nstructlogger.debug('e', x=copy.deepcopy(y))\nf = copy.deepcopy\n",
        "import copy\nstructlogger.debug('e', x=copy.deepcopy(y))\ndef f():\n    import copy\n",
        "import copy\nfor copy in []:\n    pass\n",
        "import copy as copy\nstructlogger.debug('e', x=copy.deepcopy(y))\n",
    ],
)
def test_the_source_check_finds_any_other_use_of_copy(source: str) -> None:
    assert copy_uses_outside_debug_logs(source)


def test_the_source_check_accepts_debug_arguments() -> None:
    source = "import copy\nstructlogger.debug('e', copy.deepcopy(z), x=copy.deepcopy(y))\ntracker.copy()\n"
    assert copy_uses_outside_debug_logs(source) == []


def test_only_checked_modules_get_the_stand_in() -> None:
    patched = log_copies.skip_debug_log_copies()
    assert patched == list(DEBUG_COPY_MODULES)
    for name in DEBUG_COPY_MODULES:
        module = importlib.import_module(name)
        assert isinstance(module.copy, DebugOnlyCopy)
        value = {"a": [1]}
        assert (module.copy.deepcopy(value) is value) == log_copies.debug_is_dropped(module)
    assert log_copies.skip_debug_log_copies() == list(DEBUG_COPY_MODULES)  # idempotent
    events = importlib.import_module("rasa.shared.core.events")  # copies events for real: not eligible
    assert not log_copies.deepcopies_only_for_debug_logs(events)


# ---------------------------------------------------------------------------------------------------
# 18. Custom action calls over kept connections

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
DOMAIN = Domain.empty()


class ActionServer:
    """An aiohttp action server on 127.0.0.1 that records each request's connection, headers and query."""

    def __init__(self, handler: Handler | None = None, port: int = 0) -> None:
        self.handler = handler
        self.port = port
        self.connections: List[Tuple[str, int]] = []  # client address of each request
        self.requests: List[Dict[str, Any]] = []
        self.runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.connections.append(request.transport.get_extra_info("peername"))  # type: ignore[union-attr]
        body = await request.json()
        self.requests.append({"headers": dict(request.headers), "query": dict(request.query), "body": body})
        if self.handler is not None:
            return await self.handler(request)
        return web.json_response({"events": [{"event": "slot", "name": "done", "value": len(self.requests)}]})

    async def start(self) -> ActionServer:
        app = web.Application()
        app.router.add_post("/webhook", self._handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self.runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhook"

    def connection_count(self) -> int:
        return len(set(self.connections))


def tracker() -> DialogueStateTracker:
    return DialogueStateTracker.from_events("visitor", [])


async def run_action(endpoint: Any, name: str = "action_check") -> List[Any]:
    return await RemoteAction(name, endpoint).run(None, None, tracker(), DOMAIN)  # type: ignore[arg-type]


async def outcome(call: Awaitable[Any]) -> Tuple[str, str, Any]:
    """What a call ended with: its result, or its exception's type, text and cause's type."""
    try:
        return ("result", "", await call)
    except Exception as error:
        cause = error.__cause__
        return (type(error).__name__, str(error), (type(cause).__name__, getattr(cause, "status", None)))


def unused_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def action_timeout() -> Iterator[Callable[[float], None]]:
    saved = rasa_action.DEFAULT_REQUEST_TIMEOUT

    def set_timeout(seconds: float) -> None:
        from bot.ops.rasa_main import apply_action_timeout

        apply_action_timeout(seconds)

    yield set_timeout
    rasa_action.DEFAULT_REQUEST_TIMEOUT = saved


def test_several_action_calls_share_one_connection() -> None:
    async def scenario() -> Tuple[int, int, List[Any]]:
        server = await ActionServer().start()
        endpoint = EndpointConfig(url=server.url)
        try:
            results = [await run_action(pooled(endpoint)) for _ in range(5)]
            ours = server.connection_count()
            await asyncio.gather(*(run_action(pooled(endpoint)) for _ in range(4)))  # concurrent: more
            server.connections.clear()
            for _ in range(3):
                await run_action(endpoint)  # Rasa's own: a new connection each time
            return ours, server.connection_count(), results
        finally:
            await close_pooled_sessions()
            await server.stop()

    ours, rasas, results = asyncio.run(scenario())
    assert ours == 1 and rasas == 3
    assert [events[0].value for events in results] == [1, 2, 3, 4, 5]


def test_the_same_request_reaches_the_action_server() -> None:
    config = {
        "headers": {"X-Practice": "one"},
        "basic_auth": {"username": "rasa", "password": "secret"},
        "token": "t0k",
        "params": {"a": "1"},
    }

    async def scenario() -> List[Dict[str, Any]]:
        server = await ActionServer().start()
        try:
            endpoint = EndpointConfig(url=server.url, **config)
            await run_action(endpoint)
            await run_action(pooled(endpoint))
            await run_action(pooled(endpoint))
            return server.requests
        finally:
            await close_pooled_sessions()
            await server.stop()

    rasas, ours, again = asyncio.run(scenario())
    volatile = {"Content-Length"}  # the tracker's serialisation carries no time, but be safe with lengths
    for request in (ours, again):
        assert {k: v for k, v in request["headers"].items() if k not in volatile} == {
            k: v for k, v in rasas["headers"].items() if k not in volatile
        }
        assert request["query"] == rasas["query"] == {"a": "1", "token": "t0k"}
        assert request["body"]["next_action"] == rasas["body"]["next_action"] == "action_check"
    assert rasas["headers"]["Authorization"].startswith("Basic ")


def test_no_cookies_are_kept_between_calls() -> None:
    async def set_cookie(request: web.Request) -> web.StreamResponse:
        response = web.json_response({"events": []})
        response.set_cookie("session", "abc")
        return response

    async def scenario() -> List[Dict[str, Any]]:
        server = await ActionServer(set_cookie).start()
        try:  # a host name: aiohttp's cookie jar would ignore cookies from an IP address anyway
            endpoint = pooled(EndpointConfig(url=server.url.replace("127.0.0.1", "localhost")))
            await run_action(endpoint)
            await run_action(endpoint)
            return server.requests
        finally:
            await close_pooled_sessions()
            await server.stop()

    assert all("Cookie" not in request["headers"] for request in asyncio.run(scenario()))


def test_a_restarted_action_server_is_reached_on_a_new_connection() -> None:
    async def scenario() -> Tuple[Any, Any, Any, int, int]:
        first = await ActionServer().start()
        endpoint = pooled(EndpointConfig(url=first.url))
        try:
            before = await outcome(run_action(endpoint))
            await outcome(run_action(endpoint))  # the connection is now an idle keep-alive one
            await first.stop()  # closes the idle connection
            down = await outcome(run_action(endpoint))  # not back yet: as with Rasa's own endpoint
            rasas_down = await outcome(run_action(EndpointConfig(url=first.url)))
            assert down == rasas_down, (down, rasas_down)
            second = await ActionServer(port=first.port).start()
            after = await outcome(run_action(endpoint))
            again = await outcome(run_action(endpoint))
            await second.stop()
            return before, after, again, first.connection_count(), second.connection_count()
        finally:
            await close_pooled_sessions()

    before, after, again, first_connections, second_connections = asyncio.run(scenario())
    assert before[0] == after[0] == again[0] == "result", (before, after, again)
    assert first_connections == 1 and second_connections == 1


class ClosingKeepAliveServer:
    """Answers the first request of each connection with a keep-alive response, then closes the connection
    without answering when the next request arrives on it: a server that closed an idle connection just as
    the client sent on it (or, with `answer_first=False`, a server that never answers at all)."""

    def __init__(self, answer_first: bool = True) -> None:
        self.answer_first = answer_first
        self.connections = 0
        self.requests = 0
        self.server: asyncio.AbstractServer | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        answered = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                length = next(int(line.split(b":")[1]) for line in lines if line.lower().startswith(b"content-length"))
                await reader.readexactly(length)
                self.requests += 1
                if answered or not self.answer_first:
                    break
                body = b'{"events": []}'
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: keep-alive\r\n"
                    + b"Content-Length: %d\r\n\r\n" % len(body)
                    + body
                )
                await writer.drain()
                answered += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/webhook"

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


def test_a_connection_the_server_closed_unseen_is_retried_once_on_a_new_one() -> None:
    async def scenario() -> Tuple[List[Any], int, int]:
        server = ClosingKeepAliveServer()
        endpoint = pooled(EndpointConfig(url=await server.start()))
        try:
            results = [await outcome(run_action(endpoint)) for _ in range(4)]
            return results, server.connections, server.requests
        finally:
            await close_pooled_sessions()
            await server.stop()

    results, connections, requests = asyncio.run(scenario())
    assert [result[0] for result in results] == ["result"] * 4, results
    # call 1 opens connection 1 and keeps it; call 2 meets it closed and goes again on connection 2 (of its
    # own); call 3 opens connection 3 and keeps it; call 4 meets it closed and goes again on connection 4
    assert connections == 4 and requests == 6


def test_a_new_connection_that_is_dropped_fails_as_in_rasa_without_a_retry() -> None:
    async def scenario() -> Tuple[Any, Any, int]:
        server = ClosingKeepAliveServer(answer_first=False)
        url = await server.start()
        try:
            ours = await outcome(run_action(pooled(EndpointConfig(url=url))))
            sent = server.requests
            rasas = await outcome(run_action(EndpointConfig(url=url)))
            return ours, rasas, sent
        finally:
            await close_pooled_sessions()
            await server.stop()

    ours, rasas, sent = asyncio.run(scenario())
    assert ours == rasas and ours[0] == "RasaException", (ours, rasas)
    assert sent == 1


def test_the_action_timeout_still_applies_and_is_read_at_call_time(action_timeout: Callable[[float], None]) -> None:
    slow = {"seconds": 2.0}

    async def sleepy(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(slow["seconds"])
        return web.json_response({"events": []})

    async def timed(call: Awaitable[Any]) -> Tuple[Any, float]:
        started = time.monotonic()
        result = await outcome(call)
        return result, time.monotonic() - started

    async def scenario() -> List[Tuple[Any, float]]:
        server = await ActionServer(sleepy).start()
        endpoint = pooled(EndpointConfig(url=server.url))
        try:
            action_timeout(0.3)
            runs = [await timed(run_action(endpoint)), await timed(run_action(EndpointConfig(url=server.url)))]
            action_timeout(5.0)
            slow["seconds"] = 0.6
            runs.append(await timed(run_action(endpoint)))  # a longer timeout, read at call time
            action_timeout(0.3)
            slow["seconds"] = 0.0
            runs.append(await timed(run_action(endpoint)))  # fast again: works after the timeouts
            return runs
        finally:
            await close_pooled_sessions()
            await server.stop()

    (ours, ours_s), (rasas, rasas_s), (longer, longer_s), (fast, _) = asyncio.run(scenario())
    assert ours == rasas and ours[0] == "TimeoutError", (ours, rasas)
    assert 0.25 < ours_s < 0.9 and 0.25 < rasas_s < 0.9
    assert longer[0] == "result" and longer_s >= 0.55
    assert fast[0] == "result"


@pytest.mark.parametrize(
    "status, body",
    [
        (400, {"action_name": "action_check", "error": "not for me"}),  # rejection
        (500, {"error": "boom"}),
        (404, None),
        (200, None),  # not JSON: Rasa validates None and fails
        (200, {"events": "not a list"}),  # invalid reply
    ],
)
def test_errors_map_to_the_same_rasa_exceptions(status: int, body: Dict[str, Any] | None) -> None:
    async def answer(request: web.Request) -> web.StreamResponse:
        if body is None:
            return web.Response(status=status, text="plain text")
        return web.json_response(body, status=status)

    async def scenario() -> Tuple[Any, Any, Any]:
        server = await ActionServer(answer).start()
        try:
            rasas = await outcome(run_action(EndpointConfig(url=server.url)))
            ours = await outcome(run_action(pooled(EndpointConfig(url=server.url))))
            again = await outcome(run_action(pooled(EndpointConfig(url=server.url))))
            return rasas, ours, again
        finally:
            await close_pooled_sessions()
            await server.stop()

    rasas, ours, again = asyncio.run(scenario())
    assert ours == rasas == again, (rasas, ours)
    assert ours[0] != "result"
    if status == 400:
        assert ours[0] == ActionExecutionRejection.__name__


def test_a_down_action_server_fails_as_in_rasa() -> None:
    url = f"http://127.0.0.1:{unused_port()}/webhook"

    async def scenario() -> Tuple[Any, Any]:
        try:
            rasas = await outcome(run_action(EndpointConfig(url=url)))
            return rasas, await outcome(run_action(pooled(EndpointConfig(url=url))))
        finally:
            await close_pooled_sessions()

    rasas, ours = asyncio.run(scenario())
    assert ours == rasas and ours[0] == RasaException.__name__ and "Couldn't connect" in ours[1]


def test_remote_actions_get_the_pooled_endpoint_and_sessions_close_with_the_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import rasa.core.run

    monkeypatch.setattr(RemoteAction, "__init__", RemoteAction.__init__)
    monkeypatch.setattr(rasa.core.run, "close_resources", rasa.core.run.close_resources)
    share_action_connections()
    share_action_connections()  # installing twice changes nothing
    endpoint = EndpointConfig(url="http://127.0.0.1:1/webhook", headers={"X": "1"})
    action = RemoteAction("action_check", endpoint)
    assert isinstance(action.action_endpoint, action_session.pooled_class())
    assert action.action_endpoint == endpoint and action.action_endpoint is pooled(endpoint)
    assert RemoteAction("action_none", None).action_endpoint is None

    class App:
        class ctx:
            agent = None

    async def scenario() -> bool:
        server = await ActionServer().start()
        pooled_endpoint = RemoteAction("action_check", EndpointConfig(url=server.url)).action_endpoint
        await run_action(pooled_endpoint)
        session = pooled_endpoint.pooled_session()
        await rasa.core.run.close_resources(App(), asyncio.get_running_loop())
        await server.stop()
        return bool(session.closed)

    assert asyncio.run(scenario())
