"""Custom action calls over kept connections (bot/ops/action_session.py) against the real action server
(rasa_sdk, i.e. Sanic with its 5 s keep-alive): connections are reused, and neither Sanic closing an idle
one nor a restart of the action server between two calls makes a call fail. Connections are counted by a
byte-for-byte TCP relay in front of the action server."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator, List, Tuple

import pytest
import requests
from rasa.core.actions.action import RemoteAction
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from bot.ops.action_session import close_pooled_sessions, pooled
from bot.ops.procs import free_port, spawn, stop_group
from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.e2e


class ActionServer:
    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.log_dir = log_dir
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        command = [sys.executable, "-m", "rasa_sdk", "--actions", "tests.e2e.echo_actions", "--port", str(self.port)]
        self.process = spawn(command, ROOT, env, self.log_dir / "actions.log")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{self.port}/health", timeout=1).ok:
                    return
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError("the action server did not start")

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process)


class Relay:
    """Passes bytes between each client connection and a new connection to the target; counts them."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.connections = 0
        self.server: asyncio.AbstractServer | None = None

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(self._pipe(client_reader, server_writer), self._pipe(server_reader, client_writer))

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/webhook"

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()


@pytest.fixture
def action_server(tmp_path: Path) -> Iterator[ActionServer]:
    server = ActionServer(tmp_path)
    server.start()
    yield server
    server.stop()


async def call(endpoint: Any) -> Tuple[str, Any]:
    tracker = DialogueStateTracker.from_events("visitor", [])
    try:
        events = await RemoteAction("action_echo", endpoint).run(None, None, tracker, Domain.empty())  # type: ignore[arg-type]
    except Exception as error:
        return "error", repr(error)
    return "ok", events[0].value


def test_calls_reuse_one_connection_and_survive_idle_close_and_restart(action_server: ActionServer) -> None:
    async def scenario() -> List[Any]:
        relay = Relay(action_server.port)
        endpoint = pooled(EndpointConfig(url=await relay.start()))
        steps: List[Any] = []
        try:
            results = [await call(endpoint) for _ in range(5)]
            steps.append(("five calls", results, relay.connections))
            await asyncio.sleep(6)  # past Sanic's 5 s keep-alive: it closes the idle connection
            steps.append(("after 6 s idle", [await call(endpoint)], relay.connections))
            await asyncio.sleep(0.5)
            pid_before = results[0][1]
            await asyncio.to_thread(action_server.stop)
            await asyncio.to_thread(action_server.start)
            restarted = [await call(endpoint), await call(endpoint)]
            steps.append(("after a restart", restarted, relay.connections))
            assert restarted[0][1] != pid_before
            await asyncio.to_thread(action_server.stop)
            steps.append(("server down", [await call(endpoint)], relay.connections))
            return steps
        finally:
            await close_pooled_sessions()
            await relay.stop()

    (five, five_results, after_five), (_, idle_results, after_idle), (_, restart_results, after_restart), (
        _,
        down_results,
        _,
    ) = asyncio.run(scenario())
    assert [status for status, _ in five_results] == ["ok"] * 5, five_results
    assert len({pid for _, pid in five_results}) == 1
    assert after_five == 1, f"{five}: {after_five} connections"
    assert idle_results[0][0] == "ok" and after_idle == 2, (idle_results, after_idle)
    assert [status for status, _ in restart_results] == ["ok", "ok"], restart_results
    assert after_restart == 3, after_restart  # one new connection to the restarted server, then reused
    assert down_results[0][0] == "error" and "Failed to execute custom action" in down_results[0][1]
