"""Risk messages are not queued behind ordinary ones (bot/ops/priority.py)."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import List, Tuple

import pytest

from bot.ops.priority import (
    CONCURRENCY_ENV,
    DEFAULT_CONCURRENCY,
    PriorityGate,
    concurrency_from_env,
    loaded_screen,
    model_components,
    rules_screen,
    screen_for,
)
from bot.safety.component import SafetyClassifier
from bot.safety.data_files import load_rule_documents
from bot.safety.detector import SafetyDetector


@pytest.fixture(scope="module")
def detector() -> SafetyClassifier:
    """The model's safety component with its rules only (the screen never uses the classifier)."""
    rules_only = SafetyDetector.from_documents(load_rule_documents())
    return SafetyClassifier({}, None, None, rules_only)  # type: ignore[arg-type]  # storage unused here


async def _handle(gate: PriorityGate, name: str, urgent: bool, seconds: float, log: List[Tuple[str, str]],
                  running: List[int]) -> None:
    async with gate.admit(urgent):
        running[0] += 1
        running[1] = max(running[1], running[0])
        log.append(("start", name))
        await asyncio.sleep(seconds)
        running[0] -= 1
        log.append(("end", name))


def test_a_risk_message_passes_ordinary_ones_waiting_their_turn() -> None:
    async def scenario() -> Tuple[List[Tuple[str, str]], List[int], float]:
        gate, log, running = PriorityGate(2), [], [0, 0]
        ordinary = [asyncio.create_task(_handle(gate, f"o{i}", False, 0.2, log, running)) for i in range(6)]
        await asyncio.sleep(0.05)  # two are being handled, four wait
        started = time.monotonic()
        await _handle(gate, "risk", True, 0.01, log, running)
        risk_seconds = time.monotonic() - started
        await asyncio.gather(*ordinary)
        return log, running, risk_seconds

    log, running, risk_seconds = asyncio.run(scenario())
    ends = [name for kind, name in log if kind == "end"]
    assert ends[0] == "risk" and risk_seconds < 0.1  # answered first, without waiting for a slot
    assert ends[1:] == [f"o{i}" for i in range(6)]  # ordinary ones in the order they came
    assert running[1] == 3  # two ordinary + the risk message: the limit held for ordinary ones


def test_ordinary_messages_never_exceed_the_limit() -> None:
    async def scenario() -> int:
        gate, log, running = PriorityGate(3), [], [0, 0]
        await asyncio.gather(*(_handle(gate, f"o{i}", False, 0.02, log, running) for i in range(12)))
        return running[1]

    assert asyncio.run(scenario()) == 3


@pytest.mark.parametrize("text", ["I want to kill myself", "i took a whole bottle of pills just now"])
def test_the_screen_flags_risk_with_the_models_rules(detector: SafetyClassifier, text: str) -> None:
    assert rules_screen(detector)(text)


@pytest.mark.parametrize("text", ["what are your hours?", "do you take Aetna", "hello", ""])
def test_the_screen_lets_ordinary_questions_take_their_turn(detector: SafetyClassifier, text: str) -> None:
    assert not rules_screen(detector)(text)


def test_a_failing_screen_never_stops_a_message(detector: SafetyClassifier, monkeypatch: pytest.MonkeyPatch) -> None:
    screen = rules_screen(detector)

    def broken(_self: object, _texts: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(SafetyDetector, "rules_verdicts", broken)
    assert screen("I want to kill myself") is False


def test_the_safety_component_is_found_among_the_loaded_components(detector: SafetyClassifier) -> None:
    nodes = {"tokens": SimpleNamespace(_component=object()), "safety": SimpleNamespace(_component=detector)}
    agent = SimpleNamespace(processor=SimpleNamespace(graph_runner=SimpleNamespace(_instantiated_nodes=nodes)))
    assert loaded_screen(model_components(agent)) is detector
    assert screen_for(agent) is not None
    assert screen_for(None) is None  # no model loaded yet: no screen, every message takes its turn
    assert loaded_screen([object(), None]) is None
    untrained = SafetyClassifier({}, None, None)  # type: ignore[arg-type]
    assert loaded_screen([untrained]) is None


def test_the_screen_leaves_its_verdict_for_the_parse(detector: SafetyClassifier) -> None:
    screen = rules_screen(detector)
    assert screen("I want to kill myself")
    verdicts = detector.screened.take(["I want to kill myself"])
    assert verdicts["I want to kill myself"].result.level == "acute"


def test_concurrency_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONCURRENCY_ENV, raising=False)
    assert concurrency_from_env() == DEFAULT_CONCURRENCY
    monkeypatch.setenv(CONCURRENCY_ENV, "7")
    assert concurrency_from_env() == 7
    for bad in ("0", "-1", "many"):
        monkeypatch.setenv(CONCURRENCY_ENV, bad)
        with pytest.raises(SystemExit):
            concurrency_from_env()
