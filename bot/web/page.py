"""What the practice's public page shows: its own descriptions (the `website:` block of the practice
file) next to the facts that bot.settings already loads (name, phone, hours, crisis lines)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import yaml

from bot.settings import DEFAULT_PRACTICE_FILE, PRACTICE_FILE_ENV, ConfigError, Practice


@dataclass(frozen=True)
class Service:
    title: str
    text: str


@dataclass(frozen=True)
class PageContent:
    tagline: str
    intro: str
    services: List[Service]
    first_steps: List[str]


def load_page_content(path: Path | None = None) -> PageContent:
    source = Path(path or os.environ.get(PRACTICE_FILE_ENV) or DEFAULT_PRACTICE_FILE)
    document = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    block = document.get("website") or {}
    try:
        return PageContent(
            tagline=str(block["tagline"]),
            intro=str(block["intro"]),
            services=[Service(str(item["title"]), str(item["text"])) for item in block.get("services", [])],
            first_steps=[str(step) for step in block.get("first_steps", [])],
        )
    except KeyError as error:
        raise ConfigError(f"website: missing {error.args[0]}") from error


def tel_href(number: str) -> str:
    """A tel: link for a number as people write it ('988', '(555) 010-4477', '+15550104477')."""
    digits = re.sub(r"[^\d+]", "", number)
    if not digits:
        raise ConfigError(f"'{number}' has no digits to call")
    return f"tel:{digits}"


def widget_settings(practice: Practice, rasa_url: str) -> Dict[str, str]:
    """The chat widget's data-* attributes: the server URL (the only required one) plus the numbers
    it shows when the server cannot be reached."""
    return {
        "server": rasa_url,
        "practice-name": practice.short_name,
        "phone": practice.phone,
        "phone-href": f"tel:{practice.phone_e164}",
        "emergency-number": practice.crisis["emergency_number"],
        "lifeline-number": practice.crisis["lifeline_number"],
        "init-payload": "/greet",
    }
