"""`python -m bot.ops.prod` (make run-prod): the production topology on one machine.

nginx (sticky per conversation, rate and size limits) → RASA_PROCESSES Rasa servers (PostgreSQL tracker
store, Redis lock store, RabbitMQ event broker; endpoints.prod.yml) → the action server; nginx also
serves the website, so the page and the chat share one origin. Every address comes from the
environment; `service_defaults()` fills in this machine's services for whatever is unset.
"""

from __future__ import annotations

import dataclasses
import grp
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List
from urllib.parse import quote

import jinja2
import requests

from bot.launcher import LaunchError, auth_token, port_is_free
from bot.ops.procs import spawn, stop_group
from bot.settings import PROJECT_ROOT, ConfigError, Runtime, runtime

MODEL_PATH = PROJECT_ROOT / "models" / "assistant.tar.gz"
ENDPOINTS = PROJECT_ROOT / "endpoints.prod.yml"
NGINX_TEMPLATE = PROJECT_ROOT / "deploy" / "nginx.conf.j2"
READY_TIMEOUT_SECONDS = 240.0

# Used only for variables that are not set: every service on this machine, PostgreSQL with trust auth.
SERVICE_DEFAULTS: Dict[str, str] = {
    "TRACKER_DB_HOST": "127.0.0.1",
    "TRACKER_DB_PORT": "5432",
    "TRACKER_DB_NAME": "harbor_tracker",
    "TRACKER_DB_USER": "postgres",
    "TRACKER_DB_PASSWORD": "",
    "TRACKER_DB_LOGIN_DB": "postgres",
    # libpq options; "-c synchronous_commit=off" measured +25% throughput (README, "Production").
    "TRACKER_DB_OPTIONS": "",
    "REDIS_HOST": "127.0.0.1",
    "REDIS_PORT": "6379",
    "REDIS_LOCK_DB": "1",
    "REDIS_PASSWORD": "",
    "REDIS_KEY_PREFIX": "harbor",
    "RABBITMQ_HOST": "127.0.0.1",
    "RABBITMQ_PORT": "5672",
    "RABBITMQ_USER": "guest",
    "RABBITMQ_PASSWORD": "guest",
    "RABBITMQ_EXCHANGE": "harbor-events",
    "RABBITMQ_QUEUE": "harbor_staff_events",
    "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/harbor_app",
}


def _int_env(env: Dict[str, str], name: str, default: int) -> int:
    raw = env.get(name) or str(default)
    try:
        return int(raw)
    except ValueError as error:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from error


@dataclass(frozen=True)
class ProdSettings:
    """The topology's shape: how many Rasa processes, which ports, which limits."""

    base: Runtime
    public_host: str
    public_port: int
    rasa_ports: List[int]
    chat_rate_per_minute: int
    chat_burst: int
    max_body_bytes: int

    @property
    def public_url(self) -> str:
        host = "localhost" if self.public_host in ("127.0.0.1", "0.0.0.0") else self.public_host
        return f"http://{host}:{self.public_port}"

    @property
    def run_dir(self) -> Path:
        return self.base.var_dir / "prod"

    @property
    def log_dir(self) -> Path:
        return self.base.var_dir / "logs"


def prod_settings(env: Dict[str, str] | None = None) -> ProdSettings:
    env = dict(os.environ if env is None else env)
    base = runtime(env)
    processes = _int_env(env, "RASA_PROCESSES", 2)
    if processes < 1:
        raise ConfigError("RASA_PROCESSES must be at least 1")
    first_rasa_port = base.rasa_port
    public_port = _int_env(env, "PUBLIC_PORT", 8080)
    if "WEB_PORT" not in env:  # the website sits behind nginx, next to the public port
        base = dataclasses.replace(base, web_port=public_port + 1)
    return ProdSettings(
        base=base,
        public_host=env.get("PUBLIC_HOST", "127.0.0.1"),
        public_port=public_port,
        rasa_ports=[first_rasa_port + index for index in range(processes)],
        chat_rate_per_minute=_int_env(env, "CHAT_RATE_PER_MINUTE", 30),
        chat_burst=_int_env(env, "CHAT_RATE_BURST", 10),
        max_body_bytes=_int_env(env, "MAX_REQUEST_BYTES", 16 * 1024),
    )


def service_defaults(env: Dict[str, str]) -> Dict[str, str]:
    """The environment with this machine's services filled in where nothing was configured."""
    filled = dict(env)
    for name, value in SERVICE_DEFAULTS.items():
        filled.setdefault(name, value)
    return filled


def render_nginx(settings: ProdSettings) -> Path:
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    # nginx's workers drop root privileges; they need to write their buffers folder.
    worker_user = ""
    if os.geteuid() == 0:
        entry = pwd.getpwnam("nobody")
        worker_user = f"nobody {grp.getgrgid(entry.pw_gid).gr_name}"
        os.chown(settings.run_dir, entry.pw_uid, entry.pw_gid)
    template = jinja2.Template(NGINX_TEMPLATE.read_text(encoding="utf-8"), undefined=jinja2.StrictUndefined)
    text = template.render(
        run_dir=settings.run_dir,
        log_dir=settings.log_dir,
        user=worker_user,
        public_host=settings.public_host,
        public_port=settings.public_port,
        rasa_ports=settings.rasa_ports,
        web_port=settings.base.web_port,
        chat_rate_per_minute=settings.chat_rate_per_minute,
        chat_burst=settings.chat_burst,
        # socket.io polls and reconnects: a looser limit on its requests than on REST messages.
        socket_rate_per_minute=max(600, settings.chat_rate_per_minute * 10),
        socket_burst=max(100, settings.chat_burst * 10),
        max_body_bytes=settings.max_body_bytes,
    )
    target = settings.run_dir / "nginx.conf"
    target.write_text(text, encoding="utf-8")
    return target


def nginx_binary() -> str:
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
    if not found:
        raise LaunchError("nginx is not installed; `make run-prod` installs it (apt-get install nginx-light)")
    return found


def ensure_application_database(database_url: str) -> None:
    """Create the application's PostgreSQL database if it does not exist yet (Rasa creates its own)."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if not url.drivername.startswith("postgresql") or not url.database:
        return
    import psycopg2

    connection = psycopg2.connect(
        host=url.host or "127.0.0.1", port=url.port or 5432, user=url.username, password=url.password or "",
        dbname="postgres", connect_timeout=5,
    )
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (url.database,))
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{url.database}"')
    finally:
        connection.close()


def rasa_process_name(index: int) -> str:
    return f"rasa-{index + 1}"


def tracker_store_url(env: Dict[str, str]) -> str:
    """The PostgreSQL tracker store of endpoints.prod.yml, as the staff side reads it."""
    user = quote(env["TRACKER_DB_USER"], safe="")
    password = quote(env["TRACKER_DB_PASSWORD"], safe="")
    credentials = f"{user}:{password}" if password else user
    return (
        f"postgresql://{credentials}@{env['TRACKER_DB_HOST']}:{env['TRACKER_DB_PORT']}/{env['TRACKER_DB_NAME']}"
    )


def staff_side_env(settings: ProdSettings, env: Dict[str, str]) -> Dict[str, str]:
    """The website process runs the staff side: it consumes RABBITMQ_QUEUE (no polling of the tracker
    store), reads conversations from PostgreSQL and talks to the Rasa processes' HTTP API."""
    staff = dict(env)
    staff.setdefault("HANDOFF_EVENT_SOURCE", "broker")
    staff.setdefault("TRACKER_STORE_URL", tracker_store_url(env))
    staff.setdefault("RASA_API_URL", f"http://127.0.0.1:{settings.rasa_ports[0]}")
    staff.setdefault(
        "HANDOFF_RASA_PROCESSES",
        ",".join(f"{rasa_process_name(i)}=http://127.0.0.1:{port}" for i, port in enumerate(settings.rasa_ports)),
    )
    return staff


def delete_event_queues(env: Dict[str, str]) -> None:
    """Removes RABBITMQ_QUEUE (and its parking queue) and RABBITMQ_EXCHANGE: for throwaway deployments
    (tests, benchmarks) that use names of their own, so that nothing piles up in a shared RabbitMQ."""
    import asyncio

    import aio_pika

    from bot.handoff.config import broker_url_from_env

    async def delete() -> None:
        connection = await aio_pika.connect(broker_url_from_env(env), timeout=5)
        async with connection:
            channel = await connection.channel()
            for name in (env["RABBITMQ_QUEUE"], f"{env['RABBITMQ_QUEUE']}_parked"):
                await channel.queue_delete(name)
            await channel.exchange_delete(env["RABBITMQ_EXCHANGE"])

    asyncio.run(delete())


@dataclass
class Topology:
    """The processes of one production deployment on this machine; start(), wait_until_ready(), stop()."""

    settings: ProdSettings
    env: Dict[str, str]
    token: str
    processes: Dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def rasa_command(self, port: int) -> List[str]:
        origins = [self.settings.public_url, *self.settings.base.allowed_origins]
        return [
            sys.executable, "-m", "bot.ops.rasa_main", "run", "--model", str(MODEL_PATH),
            "--endpoints", str(ENDPOINTS), "--credentials", str(PROJECT_ROOT / "credentials.yml"),
            "--interface", "127.0.0.1", "--port", str(port), "--enable-api",
            # One argument: a generated token may start with "-", which argparse would take for an option.
            f"--auth-token={self.token}",
            "--cors", *origins,
        ]

    def start_rasa(self, index: int) -> None:
        port = self.settings.rasa_ports[index]
        name = rasa_process_name(index)
        # Rasa's broker stamps what it publishes with RASA_ENVIRONMENT (the message's app_id): the staff
        # side sends its pauses and replies back to the process that holds the visitor's socket.
        env = {**self.env, "RASA_ENVIRONMENT": name}
        self.processes[name] = spawn(self.rasa_command(port), PROJECT_ROOT, env, self.settings.log_dir / f"{name}.log")

    def start(self) -> None:
        settings = self.settings
        wanted = [settings.public_port, settings.base.actions_port, settings.base.web_port, *settings.rasa_ports]
        taken = [port for port in wanted if not port_is_free("127.0.0.1", port)]
        if len(set(wanted)) != len(wanted) or taken:
            raise LaunchError(f"ports taken or repeated, nothing started: {taken or wanted}")
        ensure_application_database(self.env["DATABASE_URL"])
        from bot.db import upgrade  # Alembic migrations of the application database

        upgrade(self.env["DATABASE_URL"])
        conf = render_nginx(settings)
        logs = settings.log_dir
        self.processes["actions"] = spawn(
            [sys.executable, "-m", "rasa_sdk", "--actions", "actions", "--port", str(settings.base.actions_port)],
            PROJECT_ROOT, self.env, logs / "actions.log",
        )
        for index in range(len(settings.rasa_ports)):
            self.start_rasa(index)
        web_env = staff_side_env(settings, self.env)
        # The page points its chat at the public address (nginx), which forwards /socket.io/ to Rasa.
        web_env["RASA_PORT"] = str(settings.public_port)
        # nginx reaches the website from 127.0.0.1: the staff console's login limit then counts the
        # client address nginx puts in X-Forwarded-For, not nginx's own.
        web_env.setdefault("HANDOFF_TRUSTED_PROXIES", "127.0.0.1")
        self.processes["web"] = spawn([sys.executable, "-m", "bot.web"], PROJECT_ROOT, web_env, logs / "web.log")
        self.processes["nginx"] = spawn(
            [nginx_binary(), "-p", str(settings.run_dir), "-c", str(conf), "-e", str(logs / "nginx-error.log")],
            PROJECT_ROOT, self.env, logs / "nginx.log",
        )

    def rasa_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.settings.rasa_ports[index]}"

    def wait_until_ready(self, timeout: float = READY_TIMEOUT_SECONDS, quiet: bool = False) -> None:
        checks = {"action server": f"http://127.0.0.1:{self.settings.base.actions_port}/health"}
        for index in range(len(self.settings.rasa_ports)):
            checks[f"Rasa server {index + 1}"] = f"{self.rasa_url(index)}/status?token={self.token}"
        checks["website through nginx"] = f"http://127.0.0.1:{self.settings.public_port}/healthz"
        deadline = time.monotonic() + timeout
        for label, url in checks.items():
            if not quiet:
                print(f"  waiting for the {label} ", end="", flush=True)
            while True:
                dead = [name for name, process in self.processes.items() if process.poll() is not None]
                if dead:
                    raise LaunchError(f"{dead[0]} stopped while starting; see {self.settings.log_dir}/{dead[0]}.log")
                try:
                    if requests.get(url, timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline:
                    raise LaunchError(f"the {label} did not answer within {timeout:.0f} s")
                time.sleep(0.5)
            if not quiet:
                print("ready", flush=True)

    def stop(self) -> None:
        for process in self.processes.values():
            stop_group(process)


def build_topology(env: Dict[str, str] | None = None) -> Topology:
    environment = service_defaults(dict(os.environ if env is None else env))
    environment.setdefault("RASA_TELEMETRY_ENABLED", "false")
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), environment.get("PYTHONPATH")]))
    environment.setdefault("SITE_ORIGIN", prod_settings(environment).public_url)
    settings = prod_settings(environment)
    environment.setdefault("BOT_VAR_DIR", str(settings.base.var_dir))
    environment.setdefault("ACTION_ENDPOINT_URL", settings.base.actions_url)
    environment.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not MODEL_PATH.exists():
        raise LaunchError(f"no trained model at {MODEL_PATH}; run `make train`")
    settings.base.var_dir.mkdir(parents=True, exist_ok=True)
    return Topology(settings, environment, auth_token(settings.base))


def main() -> int:
    try:
        topology = build_topology()
    except (LaunchError, ConfigError) as error:
        print(f"Cannot start: {error}", file=sys.stderr)
        return 1

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    settings = topology.settings
    try:
        print(f"Starting the production topology ({len(settings.rasa_ports)} Rasa processes; logs in "
              f"{settings.log_dir}):", flush=True)
        topology.start()
        topology.wait_until_ready()
        print(
            f"\nRunning.\n  Website with the chat (nginx):  {settings.public_url}/\n"
            f"  Rasa processes (HTTP API, token): "
            + ", ".join(f"127.0.0.1:{port}" for port in settings.rasa_ports)
            + f"\n  Action server:                  127.0.0.1:{settings.base.actions_port}\n"
            "Press Ctrl-C to stop everything.",
            flush=True,
        )
        while True:
            dead = [name for name, process in topology.processes.items() if process.poll() is not None]
            if dead:
                raise LaunchError(f"{dead[0]} stopped unexpectedly; see {settings.log_dir}/{dead[0]}.log")
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nStopping…", flush=True)
        return 0
    except (LaunchError, ConfigError) as error:
        print(f"Cannot run: {error}", file=sys.stderr)
        return 1
    finally:
        topology.stop()
        print("All processes stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
