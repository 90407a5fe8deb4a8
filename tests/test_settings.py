from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from bot.settings import ConfigError, load_practice, practice, runtime


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "practice.yml"
    path.write_text(text, encoding="utf-8")
    return path


MINIMAL = """
practice:
  name: Test Practice
  phone: "(555) 010-0000"
  phone_e164: "+15550100000"
  email: a@example.org
  website: https://example.org
  timezone: America/Chicago
  hours:
    monday: ["09:00", "17:30"]
    tuesday: ["09:00", "17:30"]
    thursday: ["10:00", "12:00"]
crisis:
  lifeline_number: "988"
  lifeline_chat: https://988lifeline.org
  emergency_number: "911"
"""


def test_the_shipped_practice_file_loads_with_crisis_lines() -> None:
    facts = practice().template_values()
    assert facts["crisis_lifeline_number"] == "988"
    assert facts["crisis_emergency_number"] == "911"
    assert facts["practice_phone"]
    assert "(" in facts["practice_hours"] and "Mon" in facts["practice_hours"]


def test_hours_are_grouped_into_readable_text(tmp_path: Path) -> None:
    loaded = load_practice(write(tmp_path, MINIMAL))
    assert loaded.hours.describe() == "Mon–Tue 9 am–5:30 pm, Thu 10 am–12 pm"


def test_is_open_respects_days_and_closing_time(tmp_path: Path) -> None:
    loaded = load_practice(write(tmp_path, MINIMAL))
    zone = loaded.zone
    assert loaded.hours.is_open(datetime(2026, 11, 23, 9, 0, tzinfo=zone))  # a Monday
    assert not loaded.hours.is_open(datetime(2026, 11, 23, 17, 30, tzinfo=zone))
    assert not loaded.hours.is_open(datetime(2026, 11, 25, 11, 0, tzinfo=zone))  # Wednesday: closed
    # 16:00 UTC on a Monday is 10:00 in Chicago
    assert loaded.hours.is_open(loaded.local_now(datetime.fromisoformat("2026-11-23T16:00:00+00:00")))


def test_missing_crisis_line_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="emergency_number"):
        load_practice(write(tmp_path, MINIMAL.replace('  emergency_number: "911"\n', "")))


def test_bad_hours_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="closes before it opens"):
        load_practice(write(tmp_path, MINIMAL.replace('["10:00", "12:00"]', '["12:00", "10:00"]')))
    with pytest.raises(ConfigError, match="unknown day"):
        load_practice(write(tmp_path, MINIMAL.replace("thursday:", "thursdy:")))


def test_missing_fact_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="phone_e164"):
        load_practice(write(tmp_path, MINIMAL.replace('  phone_e164: "+15550100000"\n', "")))


def test_ports_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RASA_PORT", "6005")
    monkeypatch.setenv("WEB_PORT", "9090")
    settings = runtime()
    assert settings.rasa_port == 6005
    assert settings.rasa_url == "http://localhost:6005"
    assert "http://127.0.0.1:9090" in settings.allowed_origins
    monkeypatch.setenv("ACTIONS_PORT", "not-a-port")
    with pytest.raises(ConfigError, match="ACTIONS_PORT"):
        runtime()
