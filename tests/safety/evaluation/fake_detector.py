"""A stand-in for `python -m bot.safety assess`, used only by the runner's own tests.

Answers each stdin line with the level given for that exact text in a JSON file (text -> level),
and "none" for any other text, so a test knows exactly what the runner must compute.
FAKE_DETECTOR_LOG (if set) gets one line per start, to prove the runner uses a single process.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("answers", type=Path, help="JSON object: message text -> level")
    parser.add_argument("--fail", action="store_true", help="exit with status 3 without answering")
    parser.add_argument("--drop-last", action="store_true", help="leave the last message unanswered")
    args = parser.parse_args()

    log = os.environ.get("FAKE_DETECTOR_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write("started\n")
    if args.fail:
        print("fake detector asked to fail", file=sys.stderr)
        return 3

    answers = json.loads(args.answers.read_text(encoding="utf-8"))
    lines = sys.stdin.read().splitlines()
    if args.drop_last:
        lines = lines[:-1]
    for line in lines:
        level = answers.get(line, "none")
        score = {"none": 0.01, "concern": 0.4, "acute": 0.8, "imminent": 0.99}.get(level, 0.0)
        print(json.dumps({"level": level, "score": score, "reasons": [f"fake:{level}"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
