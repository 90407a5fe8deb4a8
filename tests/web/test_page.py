"""The page's content block and the widget's settings come from the practice file."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import ConfigError, load_practice
from bot.web.page import load_page_content, tel_href, widget_settings


def test_tel_links_keep_only_digits_and_plus() -> None:
    assert tel_href("(555) 010-4477") == "tel:5550104477"
    assert tel_href("+1 555 010 4477") == "tel:+15550104477"
    assert tel_href("988") == "tel:988"
    with pytest.raises(ConfigError):
        tel_href("call us")


def test_the_shipped_practice_file_has_the_page_block() -> None:
    content = load_page_content()
    assert content.tagline and content.intro
    assert content.services and all(service.title and service.text for service in content.services)
    assert content.first_steps


def test_a_missing_tagline_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "practice.yml"
    broken.write_text("website:\n  intro: hello\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="tagline"):
        load_page_content(broken)


def test_widget_settings_carry_the_server_and_the_numbers_from_the_practice_file() -> None:
    facts = load_practice()
    settings = widget_settings(facts, "http://localhost:5005")
    assert settings["server"] == "http://localhost:5005"
    assert settings["phone"] == facts.phone
    assert settings["phone-href"] == f"tel:{facts.phone_e164}"
    assert settings["emergency-number"] == facts.crisis["emergency_number"]
    assert settings["lifeline-number"] == facts.crisis["lifeline_number"]
