"""Settings of the staff side, each one an environment variable with a safe default."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Tuple
from urllib.parse import quote

import yaml

from bot.settings import ConfigError, Runtime, runtime


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    return default if raw in (None, "") else raw.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class HandoffSettings:
    database_url: str
    tracker_store_url: str
    rasa_api_url: str
    rasa_token: str
    console_url: str
    webhook_url: str
    webhook_timeout_seconds: float
    escalate_after_minutes: float
    idle_timeout_minutes: float
    watcher_poll_seconds: float
    outbox_poll_seconds: float
    fallbacks_before_handoff: int
    acknowledge_every_minutes: float
    secure_cookies: bool
    run_workers: bool
    # Staff console logins: refused (429) after this many failures per client address or per account
    # name inside the window; X-Forwarded-For is believed only from the trusted proxies (nginx).
    login_max_failures: int = 5
    login_window_minutes: float = 15.0
    trusted_proxies: Tuple[str, ...] = ()
    # Where the watcher learns of new visitor messages: "tracker" polls the tracker store (make run),
    # "broker" consumes Rasa's events from RabbitMQ (make run-prod). See bot/handoff/broker.py.
    event_source: str = "tracker"
    broker_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    broker_exchange: str = "harbor-events"
    broker_queue: str = "harbor_staff_events"
    # Rasa process name (its RASA_ENVIRONMENT, the app_id of what it publishes) -> its HTTP API URL.
    rasa_processes: Dict[str, str] = field(default_factory=dict)


EVENT_SOURCES = ("tracker", "broker")


class HandoffConfigError(ConfigError):
    """A staff-side setting that cannot work (named in the message)."""


def _tracker_url_from_endpoints(settings: Runtime) -> str:
    """The SQL tracker store that the launcher configured for this run (var/endpoints.yml)."""
    for candidate in (settings.var_dir / "endpoints.yml", Path(__file__).resolve().parents[2] / "endpoints.yml"):
        if candidate.exists():
            endpoints: Dict[str, Any] = yaml.safe_load(candidate.read_text(encoding="utf-8")) or {}
            store = endpoints.get("tracker_store") or {}
            if store.get("type") != "SQL":
                continue
            dialect = store.get("dialect", "sqlite")
            if dialect == "sqlite":
                db = Path(store.get("db", "rasa.db"))
                return f"sqlite:///{db if db.is_absolute() else settings.var_dir / db.name}"
            from rasa.core.tracker_store import SQLTrackerStore

            url = SQLTrackerStore.get_db_url(
                dialect=dialect,
                host=store.get("url"),
                port=store.get("port"),
                db=store.get("db", "rasa"),
                username=store.get("username"),
                password=store.get("password"),
            )
            return url if isinstance(url, str) else url.render_as_string(hide_password=False)
    return f"sqlite:///{settings.var_dir / 'tracker.db'}"


def rasa_token(settings: Runtime) -> str:
    """The same token the launcher gives the Rasa server (env, else the file it generated)."""
    from_env = os.environ.get("RASA_AUTH_TOKEN")
    if from_env:
        return from_env
    token_file = settings.var_dir / "rasa_auth_token"
    return token_file.read_text(encoding="utf-8").strip() if token_file.exists() else ""


def broker_url_from_env(env: Mapping[str, str] | None = None) -> str:
    """The same RabbitMQ the Rasa servers publish to (the RABBITMQ_* variables of endpoints.prod.yml)."""
    values = os.environ if env is None else env
    user = quote(values.get("RABBITMQ_USER") or "guest", safe="")
    password = quote(values.get("RABBITMQ_PASSWORD") or "guest", safe="")
    host = values.get("RABBITMQ_HOST") or "127.0.0.1"
    port = values.get("RABBITMQ_PORT") or "5672"
    return f"amqp://{user}:{password}@{host}:{port}/"


def rasa_processes_from_env() -> Dict[str, str]:
    """`HANDOFF_RASA_PROCESSES="rasa-1=http://10.0.0.5:5005,rasa-2=http://10.0.0.6:5005"`."""
    processes: Dict[str, str] = {}
    for item in (os.environ.get("HANDOFF_RASA_PROCESSES") or "").split(","):
        name, _, url = item.strip().partition("=")
        if name and url:
            processes[name.strip()] = url.strip()
        elif item.strip():
            raise HandoffConfigError(f"HANDOFF_RASA_PROCESSES: {item.strip()!r} is not name=url")
    return processes


def load_settings(base: Runtime | None = None) -> HandoffSettings:
    settings = base or runtime()
    event_source = (os.environ.get("HANDOFF_EVENT_SOURCE") or "tracker").strip().lower()
    if event_source not in EVENT_SOURCES:
        raise HandoffConfigError(f"HANDOFF_EVENT_SOURCE={event_source!r}: use one of {', '.join(EVENT_SOURCES)}")
    return HandoffSettings(
        database_url=settings.database_url,
        tracker_store_url=os.environ.get("TRACKER_STORE_URL") or _tracker_url_from_endpoints(settings),
        rasa_api_url=os.environ.get("RASA_API_URL", f"http://{settings.host}:{settings.rasa_port}"),
        rasa_token=rasa_token(settings),
        console_url=os.environ.get("HANDOFF_CONSOLE_URL", f"{settings.web_url}/staff"),
        webhook_url=os.environ.get("HANDOFF_WEBHOOK_URL", ""),
        webhook_timeout_seconds=_float("HANDOFF_WEBHOOK_TIMEOUT_SECONDS", 5.0),
        escalate_after_minutes=_float("HANDOFF_ESCALATE_AFTER_MINUTES", 5.0),
        idle_timeout_minutes=_float("HANDOFF_IDLE_TIMEOUT_MINUTES", 15.0),
        watcher_poll_seconds=_float("HANDOFF_WATCHER_POLL_SECONDS", 0.25),
        outbox_poll_seconds=_float("HANDOFF_OUTBOX_POLL_SECONDS", 2.0),
        fallbacks_before_handoff=int(_float("HANDOFF_FALLBACKS_BEFORE_HANDOFF", 2)),
        acknowledge_every_minutes=_float("HANDOFF_ACKNOWLEDGE_EVERY_MINUTES", 5.0),
        secure_cookies=_flag("HANDOFF_SECURE_COOKIES", True),
        run_workers=_flag("HANDOFF_WORKERS", True),
        login_max_failures=int(_float("HANDOFF_LOGIN_MAX_FAILURES", 5)),
        login_window_minutes=_float("HANDOFF_LOGIN_WINDOW_MINUTES", 15.0),
        trusted_proxies=tuple(
            address.strip() for address in os.environ.get("HANDOFF_TRUSTED_PROXIES", "").split(",") if address.strip()
        ),
        event_source=event_source,
        broker_url=broker_url_from_env(),
        broker_exchange=os.environ.get("RABBITMQ_EXCHANGE") or "harbor-events",
        broker_queue=os.environ.get("RABBITMQ_QUEUE") or "harbor_staff_events",
        rasa_processes=rasa_processes_from_env(),
    )
