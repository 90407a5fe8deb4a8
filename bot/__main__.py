"""Command line: `python -m bot run` starts the assistant (see bot.launcher)."""

from __future__ import annotations

import argparse
import sys

from bot.launcher import LaunchError, run
from bot.settings import ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Harbor Light assistant")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="start the Rasa server, the action server and the website")
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return run()
    except (LaunchError, ConfigError) as error:
        print(f"Cannot start: {error}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
