"""The whole trained model answers our conversations identically with and without bot/ops/rasa_main.py."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.e2e.conftest import MODEL, ROOT

pytestmark = pytest.mark.e2e


def test_adjusted_rasa_gives_identical_conversations() -> None:
    if not MODEL.exists():
        pytest.fail(f"no trained model at {MODEL}: run `make train` first (make test does)")
    result = subprocess.run([sys.executable, "-m", "tests.e2e.speedups_check", str(MODEL)], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "identical:" in result.stdout and " 0 events" not in result.stdout
