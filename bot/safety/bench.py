"""`make bench-safety`: the detector's messages/second on one core, against Rasa's NLU parse."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import List, Tuple

from bot.safety.data_files import load_examples
from bot.safety.model_loading import load_component

DETECTOR_MESSAGES = 20_000
BASELINE_MESSAGES = 300


def bench_messages(count: int) -> List[str]:
    """The team's own examples, repeated with a counter so no two messages are identical."""
    texts = [text for text, _level, _category in load_examples()]
    return [f"{texts[i % len(texts)]} {i // len(texts)}" for i in range(count)]


def measure_detector(model: Path, messages: List[str]) -> Tuple[float, float]:
    """Messages per second of wall-clock time and per second of this process's CPU time."""
    component = load_component(model)
    detector = component.detector
    assert detector is not None
    detector.assess_many(messages[:200])  # warm-up
    started, cpu_started = time.perf_counter(), time.process_time()
    for start in range(0, len(messages), 256):
        detector.assess_many(messages[start : start + 256])
    return len(messages) / (time.perf_counter() - started), len(messages) / (time.process_time() - cpu_started)


def measure_rasa_parse(model: Path, messages: List[str]) -> float:
    import logging

    from rasa.core.agent import Agent
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)  # Rasa logs every parse at debug level otherwise
    agent = Agent.load(str(model))

    async def parse_all() -> float:
        await agent.parse_message(messages[0])  # warm-up
        started = time.perf_counter()
        for message in messages:
            await agent.parse_message(message)
        return len(messages) / (time.perf_counter() - started)

    return asyncio.run(parse_all())


def run_bench(model: Path) -> int:
    detector_rate, cpu_rate = measure_detector(model, bench_messages(DETECTOR_MESSAGES))
    print(f"safety detector (rules + classifier, batches of 256): {detector_rate:,.0f} messages/s")
    # On a shared machine the wall clock also counts time other processes had the core.
    print(f"  ({cpu_rate:,.0f} messages per second of CPU time)")
    baseline_rate = measure_rasa_parse(model, bench_messages(BASELINE_MESSAGES))
    print(f"baseline: Rasa NLU parse of the same messages, one by one: {baseline_rate:,.0f} messages/s")
    print(f"the detector alone is {detector_rate / baseline_rate:,.1f}x the full NLU parse (target >= 5,000/s)")
    return 0
