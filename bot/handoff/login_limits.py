"""Slows down password guessing on the staff console: attempts are counted per client address and per
account name, and after `max_failures` failures inside the window further attempts are refused (429).

The counts live in the application database, so every website process and replica sees the same ones.
An attempt is written down (and committed) *before* the password is checked, and counted right after:
of any number of simultaneous guesses, at most `max_failures` reach the password check, whichever
process serves them. A success takes its rows back out (all of the account's, and this attempt's
address row); a failure leaves them until they fall out of the window. Refused attempts are not
counted, so hammering a locked name does not lengthen its lockout.

The account counter is kept for any name typed, existing or not, and the refusal reads the same
either way: the limiter never tells which usernames exist.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Dict, Iterable, List, Tuple

from sqlalchemy.orm import Session

from bot.db import session_scope
from bot.handoff.clock import Clock, as_utc
from bot.handoff.models import LoginAttempt

ADDRESS = "address"
ACCOUNT = "account"


def account_name(username: str) -> str:
    """The same normalization as `accounts.authenticate`, so "Dana " and "dana" share one counter."""
    return username.strip().lower()[:80]


def address_block(address: str) -> str:
    """What one client is: an IPv4 address, or an IPv6 /64 (one subscriber's usual share, cheap to hop in)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def client_address(peer: str | None, forwarded_for: Iterable[str], trusted_proxies: Iterable[str]) -> str:
    """The client's address: the peer, unless the peer is one of our proxies (nginx in production).

    Then X-Forwarded-For is read from the right, skipping our own proxies; everything left of the first
    address a trusted proxy added was written by the client and could be anything, so it is never used.
    """
    trusted = set(trusted_proxies)
    address = peer or "unknown"
    if address not in trusted:
        return address
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        if hop not in trusted:
            return hop
    return address


def _key(scope: str, value: str) -> str:
    # Hashed: this table only counts; the audit log is where tried names are shown (to admins).
    return hashlib.sha256(f"{scope}:{value}".encode()).hexdigest()


@dataclass(frozen=True)
class Reservation:
    """An attempt let through to the password check, already counted."""

    keys: Dict[str, str]  # scope -> key
    row_ids: Tuple[int, ...]
    counts: Dict[str, int]  # attempts in the window per scope, this one included


@dataclass(frozen=True)
class Refusal:
    retry_at: datetime
    scopes: Tuple[str, ...]


@dataclass(frozen=True)
class Lockout:
    scope: str
    until: datetime


class LoginLimiter:
    def __init__(self, database_url: str, clock: Clock, max_failures: int, window_minutes: float) -> None:
        if max_failures < 1 or window_minutes <= 0:
            raise ValueError("login limits need at least one attempt and a positive window")
        self.database_url = database_url
        self.clock = clock
        self.max_failures = max_failures
        self.window = timedelta(minutes=window_minutes)

    def reserve(self, address: str, username: str) -> Reservation | Refusal:
        now = self.clock.now()
        keys = {ADDRESS: _key(ADDRESS, address_block(address)), ACCOUNT: _key(ACCOUNT, account_name(username))}
        with session_scope(self.database_url) as session:
            # Entries expire: whatever has left the window is deleted on the way.
            session.query(LoginAttempt).filter(LoginAttempt.at <= now - self.window).delete(synchronize_session=False)
            rows = [LoginAttempt(key=key, at=now) for key in keys.values()]
            session.add_all(rows)
            session.flush()
            row_ids = tuple(int(row.id) for row in rows)
        # Counted only after the commit, so attempts served by other processes at the same time see ours.
        with session_scope(self.database_url) as session:
            counts = {scope: self._count(session, key, now) for scope, key in keys.items()}
            over = tuple(scope for scope, count in counts.items() if count > self.max_failures)
            if not over:
                return Reservation(keys, row_ids, counts)
            session.query(LoginAttempt).filter(LoginAttempt.id.in_(row_ids)).delete(synchronize_session=False)
            session.flush()
            retry_at = max(self._free_at(session, keys[scope], now) for scope in over)
        return Refusal(retry_at, over)

    def succeeded(self, session: Session, reservation: Reservation) -> None:
        """A right password resets the account's counter; the address keeps its earlier failures."""
        session.query(LoginAttempt).filter(
            (LoginAttempt.key == reservation.keys[ACCOUNT]) | LoginAttempt.id.in_(reservation.row_ids)
        ).delete(synchronize_session=False)

    def lockouts_started(self, session: Session, reservation: Reservation) -> List[Lockout]:
        """The limits this failed attempt has just reached (the lockouts to write to the audit log)."""
        now = self.clock.now()
        return [
            Lockout(scope, self._free_at(session, reservation.keys[scope], now))
            for scope, count in reservation.counts.items()
            if count == self.max_failures
        ]

    def _count(self, session: Session, key: str, now: datetime) -> int:
        return int(
            session.query(LoginAttempt).filter(LoginAttempt.key == key, LoginAttempt.at > now - self.window).count()
        )

    def _free_at(self, session: Session, key: str, now: datetime) -> datetime:
        """When fewer than `max_failures` of the key's attempts are left in the window."""
        oldest_that_blocks = (
            session.query(LoginAttempt.at)
            .filter(LoginAttempt.key == key, LoginAttempt.at > now - self.window)
            .order_by(LoginAttempt.at.desc())
            .offset(self.max_failures - 1)
            .limit(1)
            .scalar()
        )
        return as_utc(oldest_that_blocks) + self.window if oldest_that_blocks is not None else now
