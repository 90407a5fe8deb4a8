"""One place for configuration: the practice's facts (data/practice.yml) and runtime settings (env)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, time
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Mapping, Tuple
from zoneinfo import ZoneInfo

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PRACTICE_FILE_ENV = "PRACTICE_FILE"
DEFAULT_PRACTICE_FILE = PROJECT_ROOT / "data" / "practice.yml"
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class ConfigError(ValueError):
    """The practice file is missing a fact or has one in the wrong shape."""


@dataclass(frozen=True)
class OpeningHours:
    """Opening hours per weekday (0 = Monday), in the practice's time zone."""

    by_weekday: Dict[int, Tuple[time, time]]

    def for_weekday(self, weekday: int) -> Tuple[time, time] | None:
        return self.by_weekday.get(weekday)

    def is_open(self, local_moment: datetime) -> bool:
        """Whether the office is open at a moment already expressed in the practice's time zone."""
        span = self.for_weekday(local_moment.weekday())
        return span is not None and span[0] <= local_moment.time() < span[1]

    def describe(self) -> str:
        """Group consecutive days with equal hours: 'Mon–Thu 8 am–6 pm, Fri 8 am–5 pm'."""
        groups: List[Tuple[int, int, Tuple[time, time]]] = []
        for day in sorted(self.by_weekday):
            span = self.by_weekday[day]
            if groups and groups[-1][1] == day - 1 and groups[-1][2] == span:
                groups[-1] = (groups[-1][0], day, span)
            else:
                groups.append((day, day, span))
        parts = []
        for first, last, (opens, closes) in groups:
            days = _day_abbrev(first) if first == last else f"{_day_abbrev(first)}–{_day_abbrev(last)}"
            parts.append(f"{days} {_clock(opens)}–{_clock(closes)}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Practice:
    name: str
    short_name: str
    phone: str
    phone_e164: str
    email: str
    website: str
    address: str
    timezone: str
    timezone_label: str
    hours: OpeningHours
    intake_call_minutes: int
    states_served: List[str]
    ages_served: str
    session_formats: List[str]
    insurers: List[str]
    self_pay_rate: str
    sliding_scale: bool
    crisis: Dict[str, str] = field(default_factory=dict)
    # Handoff (issue 7): how long a visitor usually waits for a person during office hours.
    handoff_wait_minutes: int = 10
    payment_options: str = ""
    first_appointment: str = ""

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local_now(self, now: datetime | None = None) -> datetime:
        """The given (or current) moment in the practice's time zone."""
        return (now or datetime.now(tz=self.zone)).astimezone(self.zone)

    def template_values(self) -> Dict[str, str]:
        """Values that responses in domain.yml may use as {practice_*} and {crisis_*}."""
        values = {
            "practice_name": self.name,
            "practice_short_name": self.short_name,
            "practice_phone": self.phone,
            "practice_phone_e164": self.phone_e164,
            "practice_email": self.email,
            "practice_website": self.website,
            "practice_address": self.address,
            "practice_timezone": self.timezone_label,
            "practice_hours": f"{self.hours.describe()} ({self.timezone_label})",
            "practice_intake_minutes": str(self.intake_call_minutes),
            "practice_states": _join_words(self.states_served),
            "practice_ages": self.ages_served,
            "practice_formats": _join_words(self.session_formats),
            "practice_insurers": _join_words(self.insurers),
            "practice_self_pay_rate": self.self_pay_rate,
            "practice_handoff_wait_minutes": str(self.handoff_wait_minutes),
            "practice_payment_options": self.payment_options,
            "practice_first_appointment": self.first_appointment,
        }
        values.update({f"crisis_{key}": value for key, value in self.crisis.items()})
        return values


def _day_abbrev(weekday: int) -> str:
    return WEEKDAYS[weekday][:3].capitalize()


def _clock(moment: time) -> str:
    hour = moment.hour % 12 or 12
    suffix = "am" if moment.hour < 12 else "pm"
    return f"{hour} {suffix}" if moment.minute == 0 else f"{hour}:{moment.minute:02d} {suffix}"


def _join_words(items: List[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _parse_time(raw: str, where: str) -> time:
    try:
        hour, minute = (int(part) for part in str(raw).split(":"))
        return time(hour, minute)
    except ValueError as error:
        raise ConfigError(f"{where}: '{raw}' is not a HH:MM time") from error


def _parse_hours(raw: Dict[str, Any]) -> OpeningHours:
    by_weekday: Dict[int, Tuple[time, time]] = {}
    for day_name, span in (raw or {}).items():
        if day_name not in WEEKDAYS:
            raise ConfigError(f"practice.hours: unknown day '{day_name}'")
        if not isinstance(span, list) or len(span) != 2:
            raise ConfigError(f"practice.hours.{day_name}: expected [opens, closes]")
        opens = _parse_time(span[0], f"practice.hours.{day_name}")
        closes = _parse_time(span[1], f"practice.hours.{day_name}")
        if closes <= opens:
            raise ConfigError(f"practice.hours.{day_name}: closes before it opens")
        by_weekday[WEEKDAYS.index(day_name)] = (opens, closes)
    if not by_weekday:
        raise ConfigError("practice.hours: at least one opening day is needed")
    return OpeningHours(by_weekday)


REQUIRED_CRISIS_KEYS = ("lifeline_number", "lifeline_chat", "emergency_number")


def load_practice(path: Path | None = None) -> Practice:
    source = Path(path or os.environ.get(PRACTICE_FILE_ENV) or DEFAULT_PRACTICE_FILE)
    try:
        document = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as error:
        raise ConfigError(f"practice file not found: {source}") from error
    facts = document.get("practice") or {}
    crisis = {key: str(value) for key, value in (document.get("crisis") or {}).items()}
    missing = [key for key in REQUIRED_CRISIS_KEYS if not crisis.get(key)]
    if missing:
        raise ConfigError(f"crisis: missing {', '.join(missing)}")
    try:
        return Practice(
            name=str(facts["name"]),
            short_name=str(facts.get("short_name") or facts["name"]),
            phone=str(facts["phone"]),
            phone_e164=str(facts["phone_e164"]),
            email=str(facts["email"]),
            website=str(facts["website"]),
            address=str(facts.get("address", "")),
            timezone=str(facts["timezone"]),
            timezone_label=str(facts.get("timezone_label") or facts["timezone"]),
            hours=_parse_hours(facts["hours"]),
            intake_call_minutes=int(facts.get("intake_call_minutes", 15)),
            states_served=[str(item) for item in facts.get("states_served", [])],
            ages_served=str(facts.get("ages_served", "")),
            session_formats=[str(item) for item in facts.get("session_formats", [])],
            insurers=[str(item) for item in facts.get("insurers", [])],
            self_pay_rate=str(facts.get("self_pay_rate", "")),
            sliding_scale=bool(facts.get("sliding_scale", False)),
            crisis=crisis,
            handoff_wait_minutes=int(facts.get("handoff_wait_minutes", 10)),
            payment_options=str(facts.get("payment_options", "")),
            first_appointment=str(facts.get("first_appointment", "")),
        )
    except KeyError as error:
        raise ConfigError(f"practice: missing {error.args[0]}") from error


@lru_cache(maxsize=1)
def practice() -> Practice:
    """The practice loaded once per process (the file does not change while serving)."""
    return load_practice()


@dataclass(frozen=True)
class Runtime:
    """Ports, hosts and storage locations; every one can be changed by an environment variable."""

    rasa_port: int
    actions_port: int
    web_port: int
    host: str
    var_dir: Path
    database_url: str
    site_origin: str

    @property
    def public_host(self) -> str:
        """The name a browser on this machine uses; the same one everywhere keeps CORS simple."""
        return "localhost" if self.host in ("127.0.0.1", "0.0.0.0", "::1") else self.host

    @property
    def rasa_url(self) -> str:
        return f"http://{self.public_host}:{self.rasa_port}"

    @property
    def actions_url(self) -> str:
        return f"http://{self.host}:{self.actions_port}/webhook"

    @property
    def web_url(self) -> str:
        return f"http://{self.public_host}:{self.web_port}"

    @property
    def allowed_origins(self) -> List[str]:
        """Origins allowed to call the Rasa server from a browser (the website, by either name)."""
        origins = [self.site_origin]
        if self.public_host == "localhost":
            origins.append(f"http://127.0.0.1:{self.web_port}")
        return origins


def _port(name: str, default: int, env: Mapping[str, str] | None = None) -> int:
    raw = (os.environ if env is None else env).get(name, str(default))
    try:
        port = int(raw)
    except ValueError as error:
        raise ConfigError(f"{name}={raw!r} is not a port number") from error
    if not 0 < port < 65536:
        raise ConfigError(f"{name}={port} is outside 1-65535")
    return port


def runtime(env: Mapping[str, str] | None = None) -> Runtime:
    """Settings from `env` (default: this process's environment)."""
    env = os.environ if env is None else env
    var_dir = Path(env.get("BOT_VAR_DIR", PROJECT_ROOT / "var")).resolve()
    host = env.get("BOT_HOST", "127.0.0.1")
    web_port = _port("WEB_PORT", 8080, env)
    return Runtime(
        rasa_port=_port("RASA_PORT", 5005, env),
        actions_port=_port("ACTIONS_PORT", 5055, env),
        web_port=web_port,
        host=host,
        var_dir=var_dir,
        database_url=env.get("DATABASE_URL", f"sqlite:///{var_dir / 'app.db'}"),
        site_origin=env.get("SITE_ORIGIN", f"http://localhost:{web_port}"),
    )
