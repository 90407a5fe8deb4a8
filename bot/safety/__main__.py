"""`python -m bot.safety assess|bench|dev-eval` — the detector outside the Rasa server.

assess    one message per stdin line → one JSON object per stdout line {"level", "score", "reasons", …},
          using the safety component of the trained model (models/assistant.tar.gz by default).
bench     messages/second of the detector on one core vs Rasa's whole NLU parse of the same messages.
dev-eval  cross-validated recall / false-crisis figures on the team's own labelled examples.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import List

BATCH = 256


def _quiet_libraries() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    import logging

    logging.disable(logging.WARNING)


def assess(model: Path) -> int:
    from bot.safety.model_loading import load_component

    component = load_component(model)
    assert component.detector is not None
    lines: List[str] = []

    def flush() -> None:
        for assessment in component.detector.assess_many(lines):  # type: ignore[union-attr]
            sys.stdout.write(json.dumps(assessment.as_dict()) + "\n")
        sys.stdout.flush()
        lines.clear()

    for raw in sys.stdin:
        lines.append(raw.rstrip("\n"))
        if len(lines) >= BATCH:
            flush()
    flush()
    return 0


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.safety", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("assess", "bench"):
        sub = commands.add_parser(name)
        sub.add_argument("--model", type=Path, default=None, help="trained model (default models/assistant.tar.gz)")
    commands.add_parser("dev-eval")
    args = parser.parse_args(argv)
    _quiet_libraries()
    from bot.safety.model_loading import DEFAULT_MODEL, ModelError

    try:
        if args.command == "assess":
            return assess(args.model or DEFAULT_MODEL)
        if args.command == "bench":
            from bot.safety.bench import run_bench

            return run_bench(args.model or DEFAULT_MODEL)
        from bot.safety.dev_eval import run_dev_eval

        return run_dev_eval()
    except ModelError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
