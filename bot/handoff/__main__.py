"""`python -m bot.handoff create-admin` (the first admin) and `python -m bot.handoff worker`.

create-admin reads the password from the terminal, or from stdin with --password-stdin (scripts, CI).
worker runs the watcher (its event source per HANDOFF_EVENT_SOURCE: tracker-store poller or RabbitMQ
consumer) and the notifier on their own, for when the website runs with HANDOFF_WORKERS=0 (e.g. several
website replicas, with exactly one worker process).
"""

from __future__ import annotations

import argparse
import getpass
import logging
import signal
import sys
import threading
from typing import List

from bot.db import session_scope, upgrade
from bot.handoff import accounts, audit
from bot.handoff.clock import SystemClock
from bot.handoff.config import load_settings
from bot.handoff.models import ROLE_ADMIN, ROLE_INTAKE


def create_account(args: argparse.Namespace, role: str) -> int:
    settings = load_settings()
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password (at least 12 characters): ")
        if password != getpass.getpass("Repeat the password: "):
            print("the passwords differ; nothing was created", file=sys.stderr)
            return 1
    upgrade(settings.database_url)
    clock = SystemClock()
    try:
        with session_scope(settings.database_url) as session:
            account = accounts.create_account(session, clock, args.username, args.first_name, password, role)
            audit.record(
                session,
                clock,
                None,
                "staff_created",
                detail={"username": account.username, "role": role},
                username="cli",
            )
    except accounts.AccountError as error:
        print(f"not created: {error}", file=sys.stderr)
        return 1
    print(f"created {role} account '{args.username.strip().lower()}'; log in at {settings.console_url}/login")
    return 0


def run_worker() -> int:
    from bot.handoff.routing import conversation_control
    from bot.handoff.watcher import BackgroundWorkers

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    upgrade(settings.database_url)
    workers = BackgroundWorkers(settings, SystemClock(), conversation_control(settings))
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    workers.start()
    stopped.wait()
    workers.stop()
    return 0


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.handoff")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("create-admin", "create-staff"):
        command = commands.add_parser(
            name, help=f"create {'an admin' if name == 'create-admin' else 'an intake staff'} account"
        )
        command.add_argument("--username", required=True)
        command.add_argument("--first-name", required=True, help="shown to visitors next to staff replies")
        command.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    commands.add_parser("worker", help="run the watcher and the notifier without the website")
    args = parser.parse_args(argv)
    if args.command == "worker":
        return run_worker()
    return create_account(args, ROLE_ADMIN if args.command == "create-admin" else ROLE_INTAKE)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
