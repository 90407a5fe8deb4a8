"""Hook for the booking side: what the ticket page shows as "Booking" for a conversation.

The booking module registers a function `conversation_id -> {label: value} | None`, either by calling
`register_booking_lookup(fn)` at import time or by providing `bot.intake.staff_view.booking_summary`,
which is picked up automatically. Values are shown as escaped text.
"""

from __future__ import annotations

import importlib
import logging
from typing import Callable, List, Mapping

log = logging.getLogger(__name__)
BookingLookup = Callable[[str], Mapping[str, str] | None]
_lookups: List[BookingLookup] = []
CONVENTIONAL_MODULE = "bot.intake.staff_view"


def register_booking_lookup(lookup: BookingLookup) -> None:
    if lookup not in _lookups:
        _lookups.append(lookup)


def _conventional() -> BookingLookup | None:
    try:
        module = importlib.import_module(CONVENTIONAL_MODULE)
    except ImportError:
        return None
    found = getattr(module, "booking_summary", None)
    return found if callable(found) else None


def booking_for(conversation_id: str) -> Mapping[str, str] | None:
    conventional = _conventional()
    for lookup in [*_lookups, *([conventional] if conventional else [])]:
        try:
            found = lookup(conversation_id)
        except Exception:  # the ticket page must open even if the booking side fails
            log.exception("booking lookup failed for a ticket")
            continue
        if found:
            return found
    return None
