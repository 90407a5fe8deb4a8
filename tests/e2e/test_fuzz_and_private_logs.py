"""Hostile input through the real server (make run's configuration), then the logs are searched for
what visitors wrote. FUZZ_COUNT sets the number of cases (make test: a few hundred; make fuzz: 10,000)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Iterator

import pytest
import requests

from bot.ops.fuzz import make_cases, send_cases
from bot.ops.rasa_main import DEFAULT_MAX_REQUEST_BYTES as MAX_REQUEST_BYTES
from tests.e2e.ops_servers import PRIVATE_MESSAGE, TOKEN, SingleServer, env_int, private_text_in_logs, start_single

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SingleServer]:
    running = start_single(tmp_path_factory.mktemp("fuzz"))
    yield running
    running.stop()


def test_oversized_message_is_refused_with_413(server: SingleServer) -> None:
    response = server.say("a" * (MAX_REQUEST_BYTES + 1), f"big-{uuid.uuid4()}")
    assert response.status_code == 413
    assert server.say("hello", f"small-{uuid.uuid4()}").status_code == 200


def test_cors_allows_only_the_site_origin(server: SingleServer) -> None:
    site = "http://localhost:1"  # the origin start_single configures as SITE_ORIGIN
    allowed = requests.options(
        f"{server.url}/webhooks/rest/webhook",
        headers={"Origin": site, "Access-Control-Request-Method": "POST"}, timeout=10,
    )
    assert allowed.headers.get("Access-Control-Allow-Origin") == site
    for other in ("http://evil.example", "null"):
        denied = requests.options(
            f"{server.url}/webhooks/rest/webhook",
            headers={"Origin": other, "Access-Control-Request-Method": "POST"}, timeout=10,
        )
        assert denied.headers.get("Access-Control-Allow-Origin") not in (other, "*")


def test_http_api_answers_401_without_the_token(server: SingleServer) -> None:
    for path in ("/status", "/conversations/x/tracker", "/domain"):
        assert requests.get(f"{server.url}{path}", timeout=10).status_code == 401
    # Replacing the model is the most dangerous route: refused without the token.
    assert requests.put(f"{server.url}/model", json={"model_file": "x"}, timeout=10).status_code == 401
    assert requests.get(f"{server.url}/status", params={"token": TOKEN}, timeout=10).status_code == 200


def test_hostile_inputs_never_crash_or_give_5xx(server: SingleServer) -> None:
    cases = make_cases(env_int("FUZZ_COUNT", 600))
    report = asyncio.run(send_cases(server.url, cases))
    assert not report.server_errors, report.describe() + f"; first: {report.server_errors[:5]}"
    assert not report.transport_errors, report.describe() + f"; first: {report.transport_errors[:5]}"
    assert not report.risk_without_crisis_line, report.describe()
    assert server.processes["rasa"].poll() is None  # type: ignore[attr-defined]
    assert server.say("hello", f"after-fuzz-{uuid.uuid4()}").status_code == 200


def test_no_message_text_phone_email_or_insurance_in_any_log(server: SingleServer) -> None:
    """Runs last in this module: the logs then hold the fuzzing and a message with private details."""
    sender = f"private-{uuid.uuid4()}"
    assert server.say(PRIVATE_MESSAGE, sender).status_code == 200
    assert server.say("are you open right now? " + PRIVATE_MESSAGE, sender).status_code == 200
    assert server.say("I want to kill myself " + PRIVATE_MESSAGE, sender).status_code == 200
    assert private_text_in_logs([server.var_dir / "logs"]) == []
