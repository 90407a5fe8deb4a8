"""Crisis messages first: ordinary messages take turns through a small gate, risk messages walk past it.

The Rasa server handles every message on one event loop. With many messages in flight, each one's
work is interleaved with all the others', so a message that expresses risk would wait behind every
ordinary message already being handled. Here at most CHAT_CONCURRENCY ordinary messages are handled at
once (the rest wait their turn, in order); a message the safety rules flag as risk is handled at once.

The screen uses the safety rules already loaded in the model (no second copy, no classifier: about a
tenth of a millisecond). It only decides who goes first; what the person is answered is still decided
by the whole pipeline, rules and classifier, exactly as before. The model's safety component keeps the
screen's verdict for that exact text in memory, so the pipeline does not run the rules a second time
(bot/safety/component.py, `SafetyClassifier.screen`).
"""

from __future__ import annotations

import asyncio
import logging
import os
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable, Iterable, Protocol, cast

logger = logging.getLogger(__name__)

CONCURRENCY_ENV = "CHAT_CONCURRENCY"
# Two, measured with `make bench` (session 4, runs interleaved): against 4, p95 265-314 ms instead of
# 426-448 ms and crisis p95 54-70 ms instead of 112-120 ms at the same or higher throughput; 1 was as fast
# for latency but lost throughput (an action call no longer overlaps another message's work).
DEFAULT_CONCURRENCY = 2

Screen = Callable[[str], bool]


def concurrency_from_env() -> int:
    raw = os.environ.get(CONCURRENCY_ENV, "")
    if not raw:
        return DEFAULT_CONCURRENCY
    if not raw.isdigit() or int(raw) < 1:
        raise SystemExit(f"{CONCURRENCY_ENV}={raw!r} must be a whole number of messages, at least 1")
    return int(raw)


class PriorityGate:
    """At most `limit` ordinary messages at once, first come first served; urgent ones never wait."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._slots: asyncio.Semaphore | None = None  # made on first use, inside the server's event loop

    @asynccontextmanager
    async def admit(self, urgent: bool) -> AsyncIterator[None]:
        if urgent:
            yield
            return
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.limit)
        async with self._slots:
            yield


class ScreeningComponent(Protocol):
    def screen(self, text: str) -> str: ...


def rules_screen(component: ScreeningComponent) -> Screen:
    """True for a text the safety rules rate above `none`, from the model's own rules."""

    def is_risk(text: str) -> bool:
        try:
            return component.screen(text) != "none"
        except Exception:  # the screen must never stop a message; it then simply waits its turn
            logger.exception("the risk screen failed; the message is handled in its turn")
            return False

    return is_risk


def loaded_screen(components: Iterable[Any]) -> ScreeningComponent | None:
    """The safety component among a model's loaded components, if it is there (and loaded)."""
    for component in components:
        if callable(getattr(component, "screen", None)) and getattr(component, "detector", None) is not None:
            return cast(ScreeningComponent, component)
    return None


def model_components(agent: Any) -> Iterable[Any]:
    """The loaded components of the agent's model graph (empty before a model is loaded)."""
    runner = getattr(getattr(agent, "processor", None), "graph_runner", None)
    nodes = getattr(runner, "_instantiated_nodes", {}) or {}
    return [getattr(node, "_component", None) for node in nodes.values()]


def screen_for(agent: Any) -> Screen | None:
    """The risk screen for the agent's model; None while no model (with a safety component) is loaded."""
    component = loaded_screen(model_components(agent))
    return rules_screen(component) if component is not None else None
