"""Staff console login limit end to end: two real website processes (`python -m bot.web`) on one
application database. Guesses spread over both processes are counted together.

These processes have their own var folder and database, so the lockouts here cannot touch the shared
assistant that the other end-to-end tests log in to.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, NamedTuple

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.e2e.conftest import ROOT, create_account, free_port
from tests.handoff.console_client import Browser

pytestmark = pytest.mark.e2e
PASSWORD = "login limit test password"


class Websites(NamedTuple):
    first: str
    second: str
    database_url: str


def website(env: dict, port: int, log: Path) -> subprocess.Popen:  # type: ignore[type-arg]
    with log.open("w") as output:
        command = [sys.executable, "-m", "bot.web"]
        process = subprocess.Popen(command, cwd=ROOT, env={**env, "WEB_PORT": str(port)}, stdout=output, stderr=output)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except requests.ConnectionError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.2)
    process.kill()
    pytest.fail(f"the website did not start:\n{log.read_text()}")


@pytest.fixture(scope="module")
def two_websites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Websites]:
    var_dir = tmp_path_factory.mktemp("login-limit")
    env = dict(os.environ, BOT_VAR_DIR=str(var_dir), HANDOFF_WORKERS="0", PYTHONPATH=str(ROOT))
    env.pop("DATABASE_URL", None)
    create_account(env, "create-staff", "sam", "Sam", PASSWORD)
    ports = [free_port(), free_port()]
    processes = [website(env, port, var_dir / f"web-{index}.log") for index, port in enumerate(ports)]
    yield Websites(*(f"http://127.0.0.1:{port}" for port in ports), database_url=f"sqlite:///{var_dir / 'app.db'}")
    for process in processes:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)


def test_guesses_on_two_processes_add_up_and_the_sixth_gets_429(two_websites: Websites) -> None:
    first, second, database_url = two_websites
    for number in range(5):
        answer = Browser(first if number % 2 else second).log_in("sam", f"wrong guess {number}")
        assert answer.status_code == 401
    refused = Browser(second).log_in("sam", PASSWORD)
    assert refused.status_code == 429
    assert 850 <= int(refused.headers["Retry-After"]) <= 900
    assert "please try again after" in refused.text and "hl_staff_session" not in refused.headers.get("Set-Cookie", "")
    assert Browser(first).log_in("sam", PASSWORD).status_code == 429  # the other process agrees

    engine = create_engine(database_url)
    with engine.connect() as connection:
        actions = [row[0] for row in connection.execute(text("SELECT action FROM audit_log ORDER BY id"))]
    engine.dispose()
    assert actions.count("login_failed") == 5 and "login" not in actions
    # Every guess came from 127.0.0.1: the fifth locked the name and the address at once.
    assert actions.count("login_locked") == 2
