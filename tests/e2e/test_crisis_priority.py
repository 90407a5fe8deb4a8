"""A crisis message is answered while ordinary messages wait for their turn (bot/ops/priority.py).

The ordinary messages here are slow on purpose: each waits for a hung action server until the action
timeout. With CHAT_CONCURRENCY=2 they are handled two at a time; the risk message must not queue.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, Tuple

import pytest

from tests.e2e.ops_servers import SingleServer, start_single
from tests.e2e.test_action_server_faults import HungServer

pytestmark = pytest.mark.e2e
ACTION_TIMEOUT_S = 1.0
ORDINARY = 6


@pytest.fixture(scope="module")
def gated_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SingleServer]:
    hung = HungServer()
    server = start_single(tmp_path_factory.mktemp("priority"), f"http://127.0.0.1:{hung.port}/webhook",
                          with_actions=False,
                          extra_env={"CHAT_CONCURRENCY": "2", "ACTION_TIMEOUT_SECONDS": str(ACTION_TIMEOUT_S)})
    yield server
    server.stop()
    hung.close()


def timed(server: SingleServer, text: str, sender: str) -> Tuple[float, str]:
    response = server.say(text, sender)
    assert response.status_code == 200
    return time.monotonic(), " ".join(reply.get("text", "") for reply in response.json())


def test_a_risk_message_does_not_wait_behind_slow_ordinary_ones(gated_server: SingleServer) -> None:
    run = uuid.uuid4().hex[:8]
    with ThreadPoolExecutor(max_workers=ORDINARY + 1) as pool:
        started = time.monotonic()
        ordinary = [pool.submit(timed, gated_server, "are you open right now?", f"slow-{run}-{i}")
                    for i in range(ORDINARY)]
        time.sleep(0.3)  # two are being handled, four wait for a turn
        sent = time.monotonic()
        risk_done, risk_reply = pool.submit(timed, gated_server, "I want to kill myself", f"risk-{run}").result()
        ordinary_done = sorted(future.result()[0] for future in ordinary)
    assert "988" in risk_reply
    assert risk_done - sent < ACTION_TIMEOUT_S, f"crisis reply took {risk_done - sent:.2f} s"
    assert risk_done < ordinary_done[0]  # answered before every ordinary message
    # The gate really held the ordinary ones: the last pair finished a couple of action timeouts later.
    assert ordinary_done[-1] - started >= 2.5 * ACTION_TIMEOUT_S
