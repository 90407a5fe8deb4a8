"""Starts the real assistant (`python -m bot run`) on spare ports for the end-to-end tests."""

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
from typing import Iterator, List, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "assistant.tar.gz"


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
