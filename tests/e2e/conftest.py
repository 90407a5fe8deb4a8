"""Starts the real assistant (`python -m bot run`) on spare ports for the end-to-end tests, and the
helpers several end-to-end files share: staff accounts, Chromium, the console login, the widget's bubbles."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
import requests
from playwright.sync_api import Browser, Page, sync_playwright

from bot.ops.tracker_cache import SNAPSHOT_DIFFERS

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "assistant.tar.gz"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RunningAssistant:
    process: subprocess.Popen  # type: ignore[type-arg]
    output: List[str]
    env: dict
    rasa_port: int
    actions_port: int
    web_port: int
    var_dir: Path

    @property
    def rasa_url(self) -> str:
        return f"http://localhost:{self.rasa_port}"

    @property
    def web_url(self) -> str:
        return f"http://localhost:{self.web_port}"

    @property
    def token(self) -> str:
        return (self.var_dir / "rasa_auth_token").read_text().strip()


def launch(env: dict) -> subprocess.Popen:  # type: ignore[type-arg]
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def assistant_env(tmp_dir: Path, rasa_port: int, actions_port: int, web_port: int) -> dict:
    env = dict(os.environ)
    env.update(
        RASA_PORT=str(rasa_port),
        ACTIONS_PORT=str(actions_port),
        WEB_PORT=str(web_port),
        BOT_VAR_DIR=str(tmp_dir),
        PYTHONPATH=str(ROOT),
        # Every tracker the store copies from its snapshot is checked against Rasa's build from the rows.
        TRACKER_CACHE_VERIFY="1",
    )
    env.pop("RASA_AUTH_TOKEN", None)
    return env


def start_and_wait(env: dict, timeout: float = 240) -> Tuple[subprocess.Popen, List[str]]:  # type: ignore[type-arg]
    """Runs `python -m bot run` and returns once it prints that it is running (fails the test otherwise)."""
    process = launch(env)
    output: List[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if "The assistant is running" in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not ready.is_set():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("the assistant did not start:\n" + "".join(output))
        time.sleep(0.2)
    return process, output


@pytest.fixture(scope="session")
def assistant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAssistant]:
    if not MODEL.exists():
        pytest.fail(f"no trained model at {MODEL}: run `make train` first (make test does)")
    var_dir = tmp_path_factory.mktemp("var")
    ports = (free_port(), free_port(), free_port())
    env = assistant_env(var_dir, *ports)
    process, output = start_and_wait(env)
    running = RunningAssistant(process, output, env, *ports, var_dir)
    yield running
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    assert_snapshots_matched(var_dir)


def assert_snapshots_matched(var_dir: Path) -> None:
    """The tracker store logged no snapshot that differed from the stored rows (TRACKER_CACHE_VERIFY)."""
    log = var_dir / "logs" / "rasa.log"
    assert log.exists(), f"no Rasa log at {log}"
    assert SNAPSHOT_DIFFERS not in log.read_text(encoding="utf-8", errors="replace")


def tracker_events(rasa_url: str, token: str, conversation_id: str) -> List[Dict[str, Any]]:
    """A conversation's events from Rasa's HTTP API (the token-protected tracker route)."""
    response = requests.get(f"{rasa_url}/conversations/{conversation_id}/tracker", params={"token": token}, timeout=10)
    return list(response.json()["events"])


def create_account(env: dict, command: str, username: str, first_name: str, password: str) -> str:
    """Runs `python -m bot.handoff create-admin|create-staff` as an operator would; returns the username."""
    account = [command, "--username", username, "--first-name", first_name, "--password-stdin"]
    created = subprocess.run(
        [sys.executable, "-m", "bot.handoff", *account],
        input=password + "\n",
        text=True,
        capture_output=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert created.returncode == 0, created.stderr
    return username


@pytest.fixture
def chromium() -> Iterator[Browser]:
    """Debian's chromium through Playwright (its own browser downloads cannot be reached from here)."""
    if not CHROMIUM.exists():
        pytest.fail("chromium is missing: apt-get install -y chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def log_in_to_console(page: Page, web_url: str, username: str, password: str) -> None:
    """The staff login form, filled and sent; returns on the queue page."""
    page.goto(f"{web_url}/staff/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(f"{web_url}/staff/")


# The chat widget's bubbles, as a visitor sees them.


def bot_texts(page: Page) -> List[str]:
    return page.locator(".hlc-from-bot .hlc-bubble").all_inner_texts()


def wait_for_bot_text(page: Page, fragment: str, after: int = 0, timeout_s: float = 15) -> str:
    """The first bot message (from index `after` on) that contains `fragment`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for text in bot_texts(page)[after:]:
            if fragment in text:
                return text
        page.wait_for_timeout(50)  # short: the handoff tests time a staff reply's arrival with this
    raise AssertionError(f"no bot message containing {fragment!r}; got {bot_texts(page)}")


def send(page: Page, text: str) -> int:
    """Types and sends a message; returns how many bot messages there were before it."""
    before = len(bot_texts(page))
    page.get_by_label("Your message").fill(text)
    page.get_by_label("Your message").press("Enter")
    return before
