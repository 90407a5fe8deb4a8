"""Short confirmation codes that are easy to read aloud and type back."""

from __future__ import annotations

import re
import secrets

# No 0/O, 1/I/L, 2/Z, 5/S, 8/B: people confuse them on the phone and on small screens.
CODE_ALPHABET = "ACDEFGHJKMNPQRTUVWXY34679"
CODE_LENGTH = 6


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(text: str) -> str | None:
    """A code as typed ('hk3-7pq', ' HK37PQ ') in canonical form, or None if it cannot be one."""
    candidate = re.sub(r"[\s\-]", "", text or "").upper()
    if len(candidate) == CODE_LENGTH and all(char in CODE_ALPHABET for char in candidate):
        return candidate
    for word in re.findall(r"[A-Za-z0-9\-]{6,7}", text or ""):
        cleaned = word.replace("-", "").upper()
        if len(cleaned) == CODE_LENGTH and all(char in CODE_ALPHABET for char in cleaned):
            return cleaned
    return None
