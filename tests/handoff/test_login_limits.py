"""The login limiter on its own: per address, per name, resets, expiry, simultaneous guesses (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Iterator, List

import pytest
from alembic import command
from sqlalchemy import inspect

from bot.db import alembic_config, engine_for, session_scope, upgrade
from bot.handoff.clock import ManualClock
from bot.handoff.login_limits import (
    ACCOUNT,
    ADDRESS,
    LoginLimiter,
    Refusal,
    Reservation,
    address_block,
    client_address,
)
from bot.handoff.models import LoginAttempt
from tests.db_urls import migrated_database

WINDOW = timedelta(minutes=15)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from migrated_database(request.param, tmp_path, "logintest")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def limiter(database_url: str, clock: ManualClock) -> LoginLimiter:
    return LoginLimiter(database_url, clock, max_failures=5, window_minutes=15)


def fail(limiter: LoginLimiter, address: str, username: str) -> Reservation:
    """One wrong password: let through, then left standing as a failure."""
    attempt = limiter.reserve(address, username)
    assert isinstance(attempt, Reservation), f"attempt for {username} from {address} was refused"
    return attempt


def succeed(limiter: LoginLimiter, address: str, username: str) -> None:
    attempt = limiter.reserve(address, username)
    assert isinstance(attempt, Reservation)
    with session_scope(limiter.database_url) as session:
        limiter.succeeded(session, attempt)


def stored_rows(database_url: str) -> int:
    with session_scope(database_url) as session:
        return int(session.query(LoginAttempt).count())


def test_five_failures_on_one_name_refuse_the_sixth_from_anywhere(limiter: LoginLimiter, clock: ManualClock) -> None:
    first = clock.now()
    for number in range(5):
        fail(limiter, f"198.51.100.{number}", "Sam")
        clock.advance(minutes=1)
    refused = limiter.reserve("203.0.113.99", " sam ")  # same name however it is typed, new address
    assert refused == Refusal(first + WINDOW, (ACCOUNT,))
    assert isinstance(limiter.reserve("203.0.113.99", "dana"), Reservation)  # other names are not affected


def test_five_failures_from_one_address_refuse_any_name_from_it(limiter: LoginLimiter, clock: ManualClock) -> None:
    for name in ("sam", "dana", "kim", "lee", "ash"):
        fail(limiter, "198.51.100.7", name)
    refused = limiter.reserve("198.51.100.7", "robin")
    assert isinstance(refused, Refusal) and refused.scopes == (ADDRESS,)
    assert refused.retry_at == clock.now() + WINDOW
    assert isinstance(limiter.reserve("198.51.100.8", "robin"), Reservation)


def test_a_locked_name_and_a_locked_address_are_both_reported(limiter: LoginLimiter, clock: ManualClock) -> None:
    for _ in range(5):
        fail(limiter, "198.51.100.7", "sam")
    refused = limiter.reserve("198.51.100.7", "sam")
    assert isinstance(refused, Refusal) and set(refused.scopes) == {ADDRESS, ACCOUNT}


def test_the_lockout_slides_with_the_window_and_refusals_do_not_extend_it(
    limiter: LoginLimiter, clock: ManualClock, database_url: str
) -> None:
    start = clock.now()
    for _ in range(5):
        fail(limiter, "198.51.100.1", "sam")
        clock.advance(minutes=2)
    for _ in range(20):  # hammering while locked: refused, not counted, same retry time
        refused = limiter.reserve("198.51.100.1", "sam")
        assert isinstance(refused, Refusal) and refused.retry_at == start + WINDOW
    assert stored_rows(database_url) == 10  # five failures, two counters each
    clock.advance(minutes=15 - 10 - 0.01)  # just before the first failure expires
    assert isinstance(limiter.reserve("198.51.100.1", "sam"), Refusal)
    clock.advance(minutes=0.01)
    fail(limiter, "198.51.100.1", "sam")  # the oldest failure has expired: exactly one more try
    refused = limiter.reserve("198.51.100.1", "sam")
    assert isinstance(refused, Refusal) and refused.retry_at == start + timedelta(minutes=2) + WINDOW


def test_entries_expire_and_are_deleted(limiter: LoginLimiter, clock: ManualClock, database_url: str) -> None:
    for number in range(5):
        fail(limiter, f"198.51.100.{number}", "sam")
    assert stored_rows(database_url) == 10
    clock.advance(minutes=15)
    assert isinstance(limiter.reserve("192.0.2.1", "someone"), Reservation)
    assert stored_rows(database_url) == 2  # only the attempt just made is left


def test_a_success_resets_the_names_counter_but_not_the_addresses(limiter: LoginLimiter, clock: ManualClock) -> None:
    for number in range(4):
        fail(limiter, f"198.51.100.{number}", "sam")
    succeed(limiter, "198.51.100.9", "sam")
    for number in range(4):  # 8 failures in the window, but only 4 since the success
        fail(limiter, f"198.51.100.{number}", "sam")
    assert isinstance(limiter.reserve("198.51.100.9", "sam"), Reservation)

    # One address: logging in to one account does not buy more guesses at others.
    for name in ("a", "b", "c", "d"):
        fail(limiter, "203.0.113.5", name)
    succeed(limiter, "203.0.113.5", "dana")
    fail(limiter, "203.0.113.5", "e")
    refused = limiter.reserve("203.0.113.5", "dana")
    assert isinstance(refused, Refusal) and refused.scopes == (ADDRESS,)


def test_the_fifth_failure_reports_the_lockouts_it_starts(limiter: LoginLimiter, clock: ManualClock) -> None:
    start = clock.now()
    for number in range(4):
        attempt = fail(limiter, f"198.51.100.{number}", "sam")
        with session_scope(limiter.database_url) as session:
            assert limiter.lockouts_started(session, attempt) == []
        clock.advance(minutes=1)
    fifth = fail(limiter, "198.51.100.9", "sam")
    with session_scope(limiter.database_url) as session:
        lockouts = limiter.lockouts_started(session, fifth)
    assert [(lockout.scope, lockout.until) for lockout in lockouts] == [(ACCOUNT, start + WINDOW)]


def test_simultaneous_guesses_never_get_past_the_limit(limiter: LoginLimiter, database_url: str) -> None:
    outcomes: List[object] = []
    gate = threading.Barrier(16)

    def guess(number: int) -> None:
        gate.wait()
        outcomes.append(limiter.reserve(f"198.51.100.{number}", "sam"))

    threads = [threading.Thread(target=guess, args=(number,)) for number in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    let_through = [outcome for outcome in outcomes if isinstance(outcome, Reservation)]
    assert len(outcomes) == 16 and len(let_through) <= 5
    # The rows left are exactly the let-through guesses (refused ones take theirs back).
    assert stored_rows(database_url) == 2 * len(let_through)


def test_client_address_believes_forwarded_for_only_from_trusted_proxies() -> None:
    nginx = ["127.0.0.1"]
    assert client_address("198.51.100.4", ["203.0.113.1"], nginx) == "198.51.100.4"  # not from our proxy
    assert client_address("127.0.0.1", [], []) == "127.0.0.1"  # no proxy configured (make run)
    assert client_address("127.0.0.1", ["203.0.113.1"], nginx) == "203.0.113.1"
    # A client-written header: nginx appends the real address, which is the one read.
    assert client_address("127.0.0.1", ["6.6.6.6, 203.0.113.1"], nginx) == "203.0.113.1"
    assert client_address("127.0.0.1", ["203.0.113.1", "10.0.0.2"], ["127.0.0.1", "10.0.0.2"]) == "203.0.113.1"
    assert client_address("127.0.0.1", ["127.0.0.1"], nginx) == "127.0.0.1"
    assert client_address(None, [], nginx) == "unknown"


def test_ipv6_clients_are_counted_per_64_block() -> None:
    assert address_block("2001:db8:1:2:aaaa::1") == address_block("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert address_block("2001:db8:1:3::1") != address_block("2001:db8:1:2::1")
    assert address_block("::ffff:198.51.100.4") == "198.51.100.4"
    assert address_block("198.51.100.4") == "198.51.100.4"


def test_the_migration_adds_and_removes_the_table(database_url: str) -> None:
    assert "staff_login_attempts" in inspect(engine_for(database_url)).get_table_names()
    command.downgrade(alembic_config(database_url), "0003_handoff")
    engine_for(database_url).dispose()
    assert "staff_login_attempts" not in inspect(engine_for(database_url)).get_table_names()
    assert "staff_accounts" in inspect(engine_for(database_url)).get_table_names()
    upgrade(database_url)
    assert "staff_login_attempts" in inspect(engine_for(database_url)).get_table_names()
