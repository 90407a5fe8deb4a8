"""The server's garbage-collector settings (bot/ops/gc_tuning.py)."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Iterator, List

import pytest

from bot.ops.gc_tuning import DEFAULT_THRESHOLDS, THRESHOLDS_ENV, frozen_after, thresholds_from_env


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_thresholds_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(THRESHOLDS_ENV, raising=False)
    assert thresholds_from_env() == DEFAULT_THRESHOLDS
    monkeypatch.setenv(THRESHOLDS_ENV, "5000, 15, 30")
    assert thresholds_from_env() == (5000, 15, 30)
    for wrong in ("lots", "1,2", "0,10,10", "-1,10,10"):
        monkeypatch.setenv(THRESHOLDS_ENV, wrong)
        with pytest.raises(SystemExit):
            thresholds_from_env()


def test_the_loaded_model_is_frozen_and_garbage_is_collected_first(restored_gc: None) -> None:
    class Model:
        pass

    class Cycle:
        def __init__(self) -> None:
            self.me = self

    left_behind: List[weakref.ref] = []

    async def load() -> Model:
        left_behind.append(weakref.ref(Cycle()))  # garbage (a reference cycle) left by loading
        return Model()

    gc.unfreeze()
    loaded = asyncio.run(frozen_after(load)())
    assert isinstance(loaded, Model)
    assert gc.get_freeze_count() > 0
    # The model is in the permanent generation (no collection walks it); the garbage was collected, not frozen.
    assert not any(thing is loaded for thing in gc.get_objects())
    assert left_behind[0]() is None


def test_installing_sets_the_thresholds_and_wraps_rasas_loader_once(restored_gc: None) -> None:
    import rasa.core.run

    from bot.ops.gc_tuning import tune_garbage_collection

    original = rasa.core.run.load_agent_on_start
    try:
        tune_garbage_collection()
        tune_garbage_collection()
        assert gc.get_threshold() == DEFAULT_THRESHOLDS
        wrapped = rasa.core.run.load_agent_on_start
        assert getattr(wrapped, "freezes", False) and wrapped is not original
        assert [cell.cell_contents for cell in wrapped.__closure__ or ()] == [original]  # not wrapped twice
    finally:
        rasa.core.run.load_agent_on_start = original
