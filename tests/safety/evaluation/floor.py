"""Records the figures the detector reaches on each held-out set as that set's floor.

    python -m tests.safety.evaluation.floor            # print what the floors would become
    python -m tests.safety.evaluation.floor --write    # write them (a floor is only ever raised)

Recall floors are rounded down and false-crisis ceilings up (3 decimals), so the recorded figure is always
on the safe side of the measured one. A check that got worse keeps its old floor: the e2e test then fails,
which is the point; lowering a floor is a decision to make by hand, in review.
"""

from __future__ import annotations

import argparse
import math
import sys
from datetime import date
from pathlib import Path
from typing import Dict, Sequence

import yaml

from tests.safety.evaluation import run

EVALUATION = Path(__file__).resolve().parent
SETS = {"risk_cases.csv": "floor.yml", "fresh_cases.csv": "floor_fresh.yml", "blind_cases.csv": "floor_blind.yml"}
HEADER = """# Figures reached on {cases}, measured {day} (python -m tests.safety.evaluation.floor --write).
# Recall checks may not fall below these; false-crisis checks may not rise above them.
# Raise them whenever the detector improves. The issue's targets are in run.py (make safety-eval).
"""


def safe_side(check: run.TargetCheck) -> float:
    scaled = check.measured * 1000
    return (math.floor(scaled + 1e-6) if check.higher_is_better else math.ceil(scaled - 1e-6)) / 1000


def merged(old: Dict[str, float], checks: Sequence[run.TargetCheck]) -> Dict[str, float]:
    """New floor per check, never looser than the old one."""
    floors: Dict[str, float] = {}
    for check in checks:
        value = safe_side(check)
        if check.name in old:
            value = max(value, old[check.name]) if check.higher_is_better else min(value, old[check.name])
        floors[check.name] = value
    return floors


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.safety.evaluation.floor", description=__doc__)
    parser.add_argument("--write", action="store_true", help="write the floor files")
    args = parser.parse_args(argv)
    for cases, floor_name in SETS.items():
        floor_file = EVALUATION / floor_name
        old = yaml.safe_load(floor_file.read_text(encoding="utf-8"))["checks"] if floor_file.exists() else {}
        floors = merged(old, run.evaluate(run.load_cases(EVALUATION / cases)).checks())
        text = HEADER.format(cases=cases, day=date.today().isoformat()) + yaml.safe_dump(
            {"checks": floors}, sort_keys=False
        )
        print(f"--- {floor_name}\n{text}")
        if args.write:
            floor_file.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
