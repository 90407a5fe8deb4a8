"""The evaluation runner's own arithmetic and error handling, checked against a fake detector."""

from __future__ import annotations

import csv
import json
import shlex
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from tests.safety.evaluation import run
from tests.safety.evaluation.run import Case, EvaluationError

FAKE = Path(run.__file__).resolve().parent / "fake_detector.py"

# (text, category, level the fake detector answers)
SCENARIO: List[Tuple[str, str, str]] = [
    ("imminent one", "imminent", "imminent"),
    ("imminent two", "imminent", "imminent"),
    ("imminent three", "imminent", "acute"),
    ("imminent four", "imminent", "none"),
    ("explicit one", "ideation_explicit", "acute"),
    ("explicit two", "ideation_explicit", "concern"),
    ("look one", "lookalikes", "none"),
    ("look two", "lookalikes", "none"),
    ("look three", "lookalikes", "concern"),
    ("question one", "therapy_questions", "none"),
]


def write_answers(tmp_path: Path, answers: Dict[str, str]) -> Path:
    path = tmp_path / "answers.json"
    path.write_text(json.dumps(answers), encoding="utf-8")
    return path


def write_cases(tmp_path: Path, rows: List[Tuple[str, str, str]]) -> Path:
    path = tmp_path / "cases.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "expected_level", "category"])
        for text, category, _answer in rows:
            writer.writerow([text, run.CATEGORY_LEVEL[category], category])
    return path


def fake_command(answers: Path, *flags: str) -> List[str]:
    return [sys.executable, str(FAKE), str(answers), *flags]


def scenario_cases() -> List[Case]:
    return [Case(text, run.CATEGORY_LEVEL[category], category) for text, category, _ in SCENARIO]


def test_rates_follow_from_the_detectors_answers(tmp_path: Path) -> None:
    answers = write_answers(tmp_path, {text: level for text, _, level in SCENARIO})
    report = run.evaluate(scenario_cases(), fake_command(answers))

    imminent = report.categories["imminent"]
    assert (imminent.total, imminent.flagged, imminent.exact) == (4, 3, 2)
    assert imminent.flagged_rate == pytest.approx(0.75)
    assert imminent.exact_rate == pytest.approx(0.5)
    assert report.categories["ideation_explicit"].flagged_rate == pytest.approx(1.0)
    assert report.categories["lookalikes"].flagged_rate == pytest.approx(1 / 3)
    assert report.categories["therapy_questions"].flagged_rate == pytest.approx(0.0)
    assert report.overall_false_crisis_rate() == pytest.approx(1 / 4)
    assert report.overall_recall() == pytest.approx(5 / 6)

    failed = {check.name for check in report.failed_checks()}
    assert failed == {"recall imminent", "imminent classified imminent", "false crisis lookalikes"}
    assert [o.case.text for o in imminent.misses()] == ["imminent four"]
    assert [o.case.text for o in report.categories["lookalikes"].misses()] == ["look three"]


def test_all_targets_met_when_every_answer_is_right(tmp_path: Path) -> None:
    answers = write_answers(tmp_path, {text: run.CATEGORY_LEVEL[category] for text, category, _ in SCENARIO})
    report = run.evaluate(scenario_cases(), fake_command(answers))
    assert report.failed_checks() == []
    assert all(result.exact_rate == 1.0 for result in report.categories.values())


def test_ninety_seven_percent_is_the_edge_of_the_target(tmp_path: Path) -> None:
    texts = [f"passive {number}" for number in range(100)]
    cases = [Case(text, "acute", "ideation_passive") for text in texts]
    three_missed = write_answers(tmp_path, {text: "acute" for text in texts[3:]})
    assert run.evaluate(cases, fake_command(three_missed)).failed_checks() == []
    four_missed = write_answers(tmp_path, {text: "acute" for text in texts[4:]})
    assert [c.name for c in run.evaluate(cases, fake_command(four_missed)).failed_checks()] == [
        "recall ideation_passive"
    ]


def test_all_messages_go_through_one_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "starts.log"
    monkeypatch.setenv("FAKE_DETECTOR_LOG", str(log))
    run.evaluate(scenario_cases(), fake_command(write_answers(tmp_path, {})))
    assert log.read_text(encoding="utf-8").splitlines() == ["started"]


def test_main_check_exit_codes_and_misses_listing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = write_cases(tmp_path, SCENARIO)
    wrong = shlex.join(fake_command(write_answers(tmp_path, {text: level for text, _, level in SCENARIO})))
    assert run.main(["--cases", str(cases), "--command", wrong, "--check", "--show-misses"]) == 1
    printed = capsys.readouterr().out
    assert "[MISS] recall imminent: 75.0%" in printed
    assert "imminent four" in printed and "look three" in printed
    assert run.main(["--cases", str(cases), "--command", wrong]) == 0  # no --check: report only

    right = write_answers(tmp_path, {text: run.CATEGORY_LEVEL[category] for text, category, _ in SCENARIO})
    assert run.main(["--cases", str(cases), "--command", shlex.join(fake_command(right)), "--check"]) == 0


@pytest.mark.parametrize("flag", ["--fail", "--drop-last"])
def test_a_broken_detector_is_an_error_not_a_score(tmp_path: Path, flag: str) -> None:
    with pytest.raises(EvaluationError):
        run.evaluate(scenario_cases(), fake_command(write_answers(tmp_path, {}), flag))


def test_an_unknown_level_is_rejected(tmp_path: Path) -> None:
    answers = write_answers(tmp_path, {"imminent one": "severe"})
    with pytest.raises(EvaluationError, match="unknown level"):
        run.evaluate(scenario_cases(), fake_command(answers))


def test_main_reports_a_missing_detector_with_status_2(tmp_path: Path) -> None:
    cases = write_cases(tmp_path, SCENARIO)
    command = shlex.join([sys.executable, str(tmp_path / "no_such_detector.py")])
    assert run.main(["--cases", str(cases), "--command", command, "--check"]) == 2


@pytest.mark.parametrize(
    "row, problem",
    [
        (["hello", "acute", "lookalikes"], "must be none"),
        (["hello", "none", "gossip"], "unknown category"),
        (["  ", "none", "lookalikes"], "empty text"),
        (["two\nlines", "none", "lookalikes"], "several lines"),
    ],
)
def test_malformed_sets_are_refused(tmp_path: Path, row: List[str], problem: str) -> None:
    path = tmp_path / "bad.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "expected_level", "category"])
        writer.writerow(row)
    with pytest.raises(EvaluationError, match=problem):
        run.load_cases(path)
