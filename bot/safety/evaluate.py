"""`make safety-eval`: score the trained detector on labelled TSV files.

Each line: expected <TAB> category <TAB> text, where expected is `risk` (any level but none),
`imminent` (must be imminent), `none` (must be none) or `any` (reported only). '#' lines are comments.
Prints recall per category, imminent accuracy, and the false-crisis rate on `none` messages.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Tuple

from bot.safety.model_loading import DEFAULT_MODEL, load_component


def read_cases(paths: List[Path]) -> List[Tuple[str, str, str]]:
    cases = []
    files = [p for path in paths for p in (sorted(path.glob("*.tsv")) if path.is_dir() else [path])]
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                expected, category, text = line.split("\t", 2)
                cases.append((expected.strip(), category.strip(), text))
    return cases


def run_eval(paths: List[Path], model: Path = DEFAULT_MODEL) -> int:
    cases = read_cases(paths)
    if not cases:
        print(f"no evaluation cases found in {', '.join(map(str, paths))}")
        return 1
    detector = load_component(model).detector
    assert detector is not None
    verdicts = detector.assess_many([text for _, _, text in cases])
    by_category: Dict[str, List[int]] = defaultdict(lambda: [0, 0])
    risk = [0, 0]
    none = [0, 0]
    for (expected, category, _text), verdict in zip(cases, verdicts, strict=True):
        if expected == "any":
            continue
        if expected == "none":
            ok = verdict.level == "none"
            none[0] += 1
            none[1] += int(not ok)
        else:
            ok = verdict.level == "imminent" if expected == "imminent" else verdict.level != "none"
            risk[0] += 1
            risk[1] += int(verdict.level != "none")
        by_category[f"{expected:8} {category}"][0] += 1
        by_category[f"{expected:8} {category}"][1] += int(ok)
    for name, (count, passed) in sorted(by_category.items()):
        print(f"{name:45} {passed:4}/{count:<4} {100 * passed / count:6.1f}%")
    recall = 100 * risk[1] / risk[0] if risk[0] else float("nan")
    false_crisis = 100 * none[1] / none[0] if none[0] else float("nan")
    print(f"risk recall {risk[1]}/{risk[0]} = {recall:.1f}%  false crisis {none[1]}/{none[0]} = {false_crisis:.1f}%")
    return 0
