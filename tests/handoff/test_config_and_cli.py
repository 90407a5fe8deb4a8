from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml

from bot.db import session_scope
from bot.handoff.__main__ import main
from bot.handoff.config import HandoffConfigError, load_settings
from bot.handoff.models import AuditEntry, StaffAccount


@pytest.fixture
def var_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BOT_VAR_DIR", str(tmp_path))
    for name in ("DATABASE_URL", "TRACKER_STORE_URL", "RASA_AUTH_TOKEN", "HANDOFF_WEBHOOK_URL",
                 "HANDOFF_EVENT_SOURCE", "HANDOFF_RASA_PROCESSES", "RABBITMQ_HOST", "RABBITMQ_PORT",
                 "RABBITMQ_USER", "RABBITMQ_PASSWORD", "RABBITMQ_EXCHANGE", "RABBITMQ_QUEUE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_settings_follow_the_launchers_endpoints_and_token(var_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    endpoints = {"tracker_store": {"type": "SQL", "dialect": "sqlite", "db": str(var_dir / "elsewhere.db")}}
    (var_dir / "endpoints.yml").write_text(yaml.safe_dump(endpoints))
    (var_dir / "rasa_auth_token").write_text("secret-token\n")
    monkeypatch.setenv("HANDOFF_ESCALATE_AFTER_MINUTES", "2.5")
    settings = load_settings()
    assert settings.tracker_store_url == f"sqlite:///{var_dir / 'elsewhere.db'}"
    assert settings.rasa_token == "secret-token"
    assert settings.escalate_after_minutes == 2.5
    assert settings.webhook_url == ""
    monkeypatch.setenv("TRACKER_STORE_URL", "postgresql://db/rasa")
    assert load_settings().tracker_store_url == "postgresql://db/rasa"


def test_event_source_and_broker_settings(var_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.event_source == "tracker" and settings.rasa_processes == {}  # make run: no broker
    monkeypatch.setenv("HANDOFF_EVENT_SOURCE", "Broker")
    monkeypatch.setenv("RABBITMQ_HOST", "mq.internal")
    monkeypatch.setenv("RABBITMQ_PASSWORD", "s3cr:t")
    monkeypatch.setenv("RABBITMQ_QUEUE", "staff_events")
    monkeypatch.setenv("HANDOFF_RASA_PROCESSES", "rasa-1=http://10.0.0.5:5005, rasa-2=http://10.0.0.6:5005")
    settings = load_settings()
    assert settings.event_source == "broker"
    assert settings.broker_url == "amqp://guest:s3cr%3At@mq.internal:5672/"
    assert (settings.broker_exchange, settings.broker_queue) == ("harbor-events", "staff_events")
    assert settings.rasa_processes == {"rasa-1": "http://10.0.0.5:5005", "rasa-2": "http://10.0.0.6:5005"}
    monkeypatch.setenv("HANDOFF_EVENT_SOURCE", "kafka")
    with pytest.raises(HandoffConfigError, match="HANDOFF_EVENT_SOURCE"):
        load_settings()
    monkeypatch.setenv("HANDOFF_EVENT_SOURCE", "broker")
    monkeypatch.setenv("HANDOFF_RASA_PROCESSES", "rasa-1")
    with pytest.raises(HandoffConfigError, match="name=url"):
        load_settings()


def test_create_admin_from_the_command_line(var_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert main(["create-admin", "--username", "Dana", "--first-name", "Dana", "--password-stdin"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["create-staff", "--username", "sam", "--first-name", "Sam", "--password-stdin"]) == 1
    with session_scope(load_settings().database_url) as session:
        accounts = [(a.username, a.role) for a in session.query(StaffAccount)]
        audit = [(e.staff_username, e.action) for e in session.query(AuditEntry)]
    assert accounts == [("dana", "admin")]
    assert audit == [("cli", "staff_created")]
