"""A generated token can begin with "-": it must still reach `rasa run` as the token's value."""

from __future__ import annotations

import argparse
from pathlib import Path

from bot import launcher
from bot.settings import runtime


def test_a_token_starting_with_a_dash_stays_one_argument(tmp_path: Path) -> None:
    command = launcher.commands(runtime(), "-starts-with-dash", tmp_path / "endpoints.yml")["rasa"]
    parser = argparse.ArgumentParser()
    parser.add_argument("-t", "--auth-token")
    known, _ = parser.parse_known_args(command[3:])
    assert known.auth_token == "-starts-with-dash"
