"""Fixtures for the safety tests: the rules-only detector (no trained model needed)."""

from __future__ import annotations

import pytest

from bot.safety.data_files import load_rule_documents
from bot.safety.detector import SafetyDetector


@pytest.fixture(scope="session")
def rules_detector() -> SafetyDetector:
    return SafetyDetector.from_documents(load_rule_documents())
