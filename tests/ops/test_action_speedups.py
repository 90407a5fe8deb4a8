"""Adjustment 18 of bot/ops/rasa_main.py: debug-only deep copies (bot/ops/log_copies.py) change speed,
never behaviour."""

from __future__ import annotations

import importlib
import inspect
import logging
from types import ModuleType
from typing import Iterator, List

import pytest
import structlog
from rasa.shared.core.events import SlotSet

from bot.ops import log_copies
from bot.ops.log_copies import DEBUG_COPY_MODULES, DebugOnlyCopy, copy_uses_outside_debug_logs

# ---------------------------------------------------------------------------------------------------
# 18. Deep copies for debug logs


@pytest.fixture
def structlog_config() -> Iterator[None]:
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def module_with_logger() -> ModuleType:
    module = ModuleType("fake_rasa_module")
    module.structlogger = structlog.get_logger()  # type: ignore[attr-defined]
    return module


@pytest.mark.parametrize("cached", [True, False])
def test_the_copy_is_real_with_debug_on_and_skipped_with_debug_off(structlog_config: None, cached: bool) -> None:
    value = {"states": [{"user": {"intent": "greet"}}], "events": [SlotSet("a", [1, 2])]}
    levels = [(logging.INFO, False), (logging.DEBUG, True), (logging.WARNING, False), (logging.NOTSET, True)]
    for level, copies in levels:
        structlog.configure(
            wrapper_class=structlog.make_filtering_bound_logger(level), cache_logger_on_first_use=cached
        )
        shim = DebugOnlyCopy(module_with_logger())
        copied = shim.deepcopy(value)
        if copies:
            assert copied is not value and copied["states"] is not value["states"], level
            assert copied["states"] == value["states"] and copied["events"][0] is not value["events"][0]
        else:
            assert copied is value, level
        assert shim.copy is importlib.import_module("copy").copy  # anything else: the real module


def test_the_copy_follows_rasas_own_logging_configuration(structlog_config: None) -> None:
    from rasa.utils.log_utils import configure_structlog

    value = [{"a": 1}]
    configure_structlog(logging.INFO)
    assert DebugOnlyCopy(module_with_logger()).deepcopy(value) is value
    configure_structlog(logging.DEBUG)  # `rasa run --debug`
    copied = DebugOnlyCopy(module_with_logger()).deepcopy(value)
    assert copied == value and copied is not value and copied[0] is not value[0]


def test_an_unconfigured_or_unknown_logger_gets_real_copies(structlog_config: None) -> None:
    structlog.reset_defaults()  # structlog's default: every level is processed
    value = {"a": [1]}
    assert DebugOnlyCopy(module_with_logger()).deepcopy(value) is not value
    assert DebugOnlyCopy(ModuleType("no_logger")).deepcopy(value) is not value


def test_the_patched_rasa_modules_use_deepcopy_only_inside_structlogger_debug_calls() -> None:
    for name in DEBUG_COPY_MODULES:
        source = inspect.getsource(importlib.import_module(name))
        assert copy_uses_outside_debug_logs(source) == [], name
        assert source.count("copy.deepcopy(") >= 1, name


@pytest.mark.parametrize(
    "source",
    [
        "import copy\nx = copy.deepcopy(y)\n",  # feeds real logic
        "import copy\nstructlogger.info('e', x=copy.deepcopy(y))\n",  # kept at info level
        "import copy\nstructlogger.debug('e', x=len(copy.deepcopy(y)))\n",  # nested in something else
        "import copy\nstructlogger.debug('e', x=copy.copy(y))\n",
        "import copy\nstructlogger.debug('e', x=copy.deepcopy(y))\nf = copy.deepcopy\n",
        "import copy\nstructlogger.debug('e', x=copy.deepcopy(y))\ndef f():\n    import copy\n",
        "import copy\nfor copy in []:\n    pass\n",
        "import copy as copy\nstructlogger.debug('e', x=copy.deepcopy(y))\n",
    ],
)
def test_the_source_check_finds_any_other_use_of_copy(source: str) -> None:
    assert copy_uses_outside_debug_logs(source)


def test_the_source_check_accepts_debug_arguments() -> None:
    source = "import copy\nstructlogger.debug('e', copy.deepcopy(z), x=copy.deepcopy(y))\ntracker.copy()\n"
    assert copy_uses_outside_debug_logs(source) == []


def test_only_checked_modules_get_the_stand_in() -> None:
    patched = log_copies.skip_debug_log_copies()
    assert patched == list(DEBUG_COPY_MODULES)
    for name in DEBUG_COPY_MODULES:
        module = importlib.import_module(name)
        assert isinstance(module.copy, DebugOnlyCopy)
        value = {"a": [1]}
        assert (module.copy.deepcopy(value) is value) == log_copies.debug_is_dropped(module)
    assert log_copies.skip_debug_log_copies() == list(DEBUG_COPY_MODULES)  # idempotent
    events = importlib.import_module("rasa.shared.core.events")  # copies events for real: not eligible
    assert not log_copies.deepcopies_only_for_debug_logs(events)


# RulePolicy's states rendered as text for a debug line only

LOGGED_ONLY = '''
def find(self, states):
    current_states = self.format_tracker_states(states)
    structlogger.debug("rule_policy.actions.find", current_states=copy.deepcopy(current_states))
    return states
'''


@pytest.mark.parametrize("use", [
    "return current_states",
    "keys.append(current_states)",
    "current_states = 'other'",
    "structlogger.info('x', current_states=copy.deepcopy(current_states))",
    "other = self.format_tracker_states(states)",
])
def test_the_state_text_check_refuses_any_other_use(use: str) -> None:
    assert log_copies.only_logged(LOGGED_ONLY, "format_tracker_states")
    assert not log_copies.only_logged(LOGGED_ONLY + f"    {use}\n", "format_tracker_states")


def test_rule_policy_formats_its_states_only_while_debug_lines_are_kept(
    structlog_config: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rasa.core.policies.policy import Policy
    from rasa.core.policies.rule_policy import RulePolicy

    # Removed again afterwards (RulePolicy inherits Policy's).
    monkeypatch.setattr(RulePolicy, "format_tracker_states", Policy.__dict__["format_tracker_states"], raising=False)
    assert log_copies.skip_debug_only_state_formatting()  # Rasa's own source passes the check
    states = [{"user": {"intent": "greet"}, "prev_action": {"action_name": "action_listen"}}]
    asked: List[ModuleType] = []
    for dropped, expected in ((True, ""), (False, Policy.format_tracker_states(states))):
        # Whether the line is dropped is debug_is_dropped's answer (tested above) about rule_policy's logger.
        monkeypatch.setattr(log_copies, "debug_is_dropped", lambda module, d=dropped: asked.append(module) or d)
        assert RulePolicy.format_tracker_states(states) == expected
    assert expected != "" and {module.__name__ for module in asked} == {"rasa.core.policies.rule_policy"}
