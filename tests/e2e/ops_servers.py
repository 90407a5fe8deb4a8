"""Start a real Rasa server (and optionally the action server) for the production tests."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List

import requests

from bot.launcher import child_environment, commands, write_endpoints
from bot.ops.procs import free_port, spawn, stop_group
from bot.settings import PROJECT_ROOT, Runtime

TOKEN = "ops-test-token"
# Strings a test sends as chat text; none of them may appear in any log.
PRIVATE_MARKERS = {
    "text": "Quillfeather-Marker-7731",
    "phone": "(415) 555-0198",
    "phone_digits": "4155550198",
    "email": "marker.person@example.org",
    "insurance": "Bluemarker Health Mutual",
}
PRIVATE_MESSAGE = (
    f"{PRIVATE_MARKERS['text']} my number is {PRIVATE_MARKERS['phone']}, "
    f"email {PRIVATE_MARKERS['email']}, insurance {PRIVATE_MARKERS['insurance']}"
)


@dataclass
class SingleServer:
    var_dir: Path
    rasa_port: int
    processes: Dict[str, object] = field(default_factory=dict)
    actions_port: int = 0  # the real action server's (also when action_url points Rasa elsewhere)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}"

    def say(self, text: str, sender: str, timeout: float = 30) -> requests.Response:
        return requests.post(f"{self.url}/webhooks/rest/webhook", json={"sender": sender, "message": text},
                             timeout=timeout)

    def stop(self) -> None:
        for process in self.processes.values():
            stop_group(process)  # type: ignore[arg-type]


def start_single(var_dir: Path, action_url: str | None = None, with_actions: bool = True,
                 extra_env: Dict[str, str] | None = None) -> SingleServer:
    """`make run`'s Rasa server (SQLite tracker store); action_url replaces the action server's address."""
    settings = Runtime(
        rasa_port=free_port(), actions_port=free_port(), web_port=free_port(), host="127.0.0.1",
        var_dir=var_dir, database_url=f"sqlite:///{var_dir / 'app.db'}", site_origin="http://localhost:1",
    )
    (var_dir / "logs").mkdir(parents=True, exist_ok=True)
    endpoints = write_endpoints(settings)
    if action_url:
        endpoints.write_text(re.sub(r"url: .*/webhook", f"url: {action_url}", endpoints.read_text()))
    env = child_environment(settings)
    env.update(extra_env or {})
    planned = commands(settings, TOKEN, endpoints)
    server = SingleServer(var_dir, settings.rasa_port, actions_port=settings.actions_port)
    if with_actions:
        server.processes["actions"] = spawn(planned["actions"], PROJECT_ROOT, env, var_dir / "logs" / "actions.log")
    server.processes["rasa"] = spawn(planned["rasa"], PROJECT_ROOT, env, var_dir / "logs" / "rasa.log")
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{server.url}/status", params={"token": TOKEN}, timeout=2).status_code == 200:
                return server
        except requests.RequestException:
            pass
        if server.processes["rasa"].poll() is not None:  # type: ignore[attr-defined]
            break
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"Rasa did not start; see {var_dir / 'logs' / 'rasa.log'}")


def log_files(folders: Iterable[Path]) -> List[Path]:
    return [path for folder in folders for path in Path(folder).rglob("*.log") if path.is_file()]


def private_text_in_logs(folders: Iterable[Path]) -> List[str]:
    """Which private markers appear in which log file (empty when the logs are clean)."""
    found = []
    for path in log_files(folders):
        content = path.read_text(encoding="utf-8", errors="replace")
        for name, marker in PRIVATE_MARKERS.items():
            if marker in content:
                found.append(f"{name} in {path.name}")
    return found


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)
