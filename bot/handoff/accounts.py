"""Staff accounts: argon2id password hashes, roles, and login checks that take the same time either way."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.orm import Session

from bot.handoff.clock import Clock
from bot.handoff.models import ROLES, StaffAccount

_hasher = PasswordHasher()
# Verified against when the username is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-real-password")
MIN_PASSWORD_LENGTH = 12


class AccountError(ValueError):
    """A staff account cannot be created as asked (shown to the admin)."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def create_account(
    session: Session, clock: Clock, username: str, first_name: str, password: str, role: str
) -> StaffAccount:
    username = username.strip().lower()
    first_name = first_name.strip()
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if not username or not first_name:
        raise AccountError("username and first name are required")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    if session.query(StaffAccount).filter_by(username=username).first():
        raise AccountError(f"the username {username!r} is taken")
    account = StaffAccount(
        username=username,
        first_name=first_name,
        password_hash=hash_password(password),
        role=role,
        active=True,
        created_at=clock.now(),
    )
    session.add(account)
    session.flush()
    return account


def authenticate(session: Session, username: str, password: str) -> StaffAccount | None:
    account = session.query(StaffAccount).filter_by(username=username.strip().lower()).first()
    try:
        _hasher.verify(account.password_hash if account else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if account is None or not account.active:
        return None
    if _hasher.check_needs_rehash(account.password_hash):
        account.password_hash = hash_password(password)
    return account
