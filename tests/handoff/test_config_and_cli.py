from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml

from bot.db import session_scope
from bot.handoff.__main__ import main
from bot.handoff.config import load_settings
from bot.handoff.models import AuditEntry, StaffAccount


@pytest.fixture
def var_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BOT_VAR_DIR", str(tmp_path))
    for name in ("DATABASE_URL", "TRACKER_STORE_URL", "RASA_AUTH_TOKEN", "HANDOFF_WEBHOOK_URL"):
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
