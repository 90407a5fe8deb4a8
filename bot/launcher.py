"""`python -m bot run`: start the Rasa server, the action server and the website on this machine.

Refuses to start when a port is taken, prints the URLs once everything answers, and stops every
process it started on Ctrl-C (or when any of them dies).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import requests
import yaml

from bot.settings import PROJECT_ROOT, Runtime, runtime

MODEL_PATH = PROJECT_ROOT / "models" / "assistant.tar.gz"
READY_TIMEOUT_SECONDS = 180.0


class LaunchError(RuntimeError):
    """Something the person starting the assistant can fix (a taken port, no model)."""


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def check_ports(settings: Runtime) -> None:
    wanted = {
        "Rasa server (RASA_PORT)": settings.rasa_port,
        "action server (ACTIONS_PORT)": settings.actions_port,
        "website (WEB_PORT)": settings.web_port,
    }
    if len(set(wanted.values())) != len(wanted):
        raise LaunchError(f"two services were given the same port: {wanted}")
    taken = [f"{name}: port {port}" for name, port in wanted.items() if not port_is_free(settings.host, port)]
    if taken:
        raise LaunchError(
            "these ports are already in use, so nothing was started:\n  "
            + "\n  ".join(taken)
            + "\nStop whatever uses them, or choose other ports, e.g. RASA_PORT=5006 make run"
        )


def auth_token(settings: Runtime) -> str:
    """The HTTP API token: RASA_AUTH_TOKEN if set, else one generated once and kept in var/."""
    from_env = os.environ.get("RASA_AUTH_TOKEN")
    if from_env:
        return from_env
    token_file = settings.var_dir / "rasa_auth_token"
    if not token_file.exists():
        token_file.write_text(secrets.token_urlsafe(32), encoding="utf-8")
        token_file.chmod(0o600)
    return token_file.read_text(encoding="utf-8").strip()


def write_endpoints(settings: Runtime) -> Path:
    """endpoints.yml with this run's action server port and storage folder filled in."""
    endpoints = yaml.safe_load((PROJECT_ROOT / "endpoints.yml").read_text(encoding="utf-8"))
    endpoints["action_endpoint"]["url"] = settings.actions_url
    tracker = endpoints.get("tracker_store") or {}
    # Safety (issue 3): the risk-recording store is an SQL tracker store too.
    sql_types = ("SQL", "bot.safety.tracker_store.RiskRecordingTrackerStore")
    if tracker.get("type") in sql_types and tracker.get("dialect") == "sqlite":
        tracker["db"] = str(settings.var_dir / "tracker.db")
    target = settings.var_dir / "endpoints.yml"
    target.write_text(yaml.safe_dump(endpoints, sort_keys=False), encoding="utf-8")
    return target


def commands(settings: Runtime, token: str, endpoints: Path) -> Dict[str, List[str]]:
    python = sys.executable
    return {
        "actions": [python, "-m", "rasa_sdk", "--actions", "actions", "--port", str(settings.actions_port)],
        "rasa": [
            python,
            "-m",
            "bot.ops.rasa_main",  # Rasa's CLI with a bounded action-server timeout (see that module)
            "run",
            "--model",
            str(MODEL_PATH),
            "--endpoints",
            str(endpoints),
            "--credentials",
            str(PROJECT_ROOT / "credentials.yml"),
            "--interface",
            settings.host,
            "--port",
            str(settings.rasa_port),
            "--enable-api",
            # One argument with "=": a generated token may start with "-", which argparse takes for an option.
            f"--auth-token={token}",
            "--cors",
            *settings.allowed_origins,
        ],
        "web": [python, "-m", "bot.web"],
        # Delivers staff notices of new intake bookings to INTAKE_WEBHOOK_URL; idles without one.
        "outbox": [python, "-m", "bot.intake.outbox"],
    }


def child_environment(settings: Runtime) -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    env.setdefault("BOT_VAR_DIR", str(settings.var_dir))
    # Rasa's telemetry would try to reach the internet.
    env.setdefault("RASA_TELEMETRY_ENABLED", "false")
    return env


def start(name: str, command: List[str], env: Dict[str, str], log_dir: Path) -> Child:
    log = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115 - kept open for the child's lifetime
    process = subprocess.Popen(
        command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    return Child(name, process)


def wait_until_ready(settings: Runtime, children: List[Child], token: str) -> None:
    checks = {
        "action server": f"http://{settings.host}:{settings.actions_port}/health",
        "website": f"{settings.web_url}/healthz",
        "Rasa server (loading the model)": f"{settings.rasa_url}/status?token={token}",
    }
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    for label, url in checks.items():
        print(f"  waiting for the {label} ", end="", flush=True)
        while True:
            dead = [child.name for child in children if child.process.poll() is not None]
            if dead:
                raise LaunchError(f"{', '.join(dead)} stopped while starting; see var/logs/{dead[0]}.log")
            try:
                if requests.get(url, timeout=2).status_code == 200:
                    print("ready", flush=True)
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise LaunchError(f"the {label} did not answer within {READY_TIMEOUT_SECONDS:.0f} s")
            print(".", end="", flush=True)
            time.sleep(1)


def stop(children: List[Child]) -> None:
    for child in children:
        if child.process.poll() is None:
            os.killpg(child.process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for child in children:
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(child.process.pid, signal.SIGKILL)
            child.process.wait()


def run(settings: Runtime | None = None) -> int:
    settings = settings or runtime()
    if not MODEL_PATH.exists():
        raise LaunchError(f"no trained model at {MODEL_PATH}; run `make train` (make run does it for you)")
    check_ports(settings)
    from bot.db import upgrade  # imported here: `--help` should not need SQLAlchemy

    upgrade(settings.database_url)
    log_dir = settings.var_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    token = auth_token(settings)
    endpoints = write_endpoints(settings)
    env = child_environment(settings)
    children: List[Child] = []

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    # Installed explicitly: a shell that starts us in the background may have SIGINT ignored.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        print("Starting the assistant (logs in var/logs/):", flush=True)
        for name, command in commands(settings, token, endpoints).items():
            children.append(start(name, command, env, log_dir))
        wait_until_ready(settings, children, token)
        print(
            f"\nThe assistant is running.\n"
            f"  Website with the chat:  {settings.web_url}/\n"
            f"  Rasa server:            {settings.rasa_url}  (HTTP API on {settings.host}; token in "
            f"var/rasa_auth_token or RASA_AUTH_TOKEN)\n"
            f"  Action server:          http://{settings.host}:{settings.actions_port}\n"
            f"Press Ctrl-C to stop everything.",
            flush=True,
        )
        while True:
            dead = [child for child in children if child.process.poll() is not None]
            if dead:
                raise LaunchError(f"{dead[0].name} stopped unexpectedly; see var/logs/{dead[0].name}.log")
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nStopping…", flush=True)
        return 0
    finally:
        stop(children)
        print("All processes stopped.", flush=True)
