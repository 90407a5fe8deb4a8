from __future__ import annotations

import pytest

from bot.intake import answers
from bot.intake.codes import CODE_ALPHABET, new_code, normalise_code
from bot.settings import practice


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("212 555 0123", ("+12125550123", None)),
        ("(917) 555-0188 or sam@example.com", ("+19175550188", "sam@example.com")),
        ("Sam@Example.COM", (None, "Sam@example.com")),
        ("+1 212-555-0123", ("+12125550123", None)),
    ],
)
def test_contacts_are_normalised(text: str, expected: tuple) -> None:
    contact = answers.parse_contact(text)
    assert (contact.phone, contact.email, contact.problem) == (*expected, None)


@pytest.mark.parametrize(
    ("text", "problem"),
    [("12345", "phone"), ("555 0123", "phone"), ("sam@", "email"), ("sam@@example", "email"), ("call me", "nothing")],
)
def test_bad_contacts_say_what_is_wrong(text: str, problem: str) -> None:
    assert answers.parse_contact(text).problem == problem


def test_non_us_numbers_are_refused() -> None:
    assert answers.parse_contact("+44 20 7946 0958").problem == "phone"


@pytest.mark.parametrize(
    ("text", "name", "accepted"),
    [
        ("UHC", "Optum / UnitedHealthcare", True),
        ("I have blue cross", "Anthem Blue Cross Blue Shield", True),
        ("aetna ppo", "Aetna", True),
        ("self pay", "self-pay", True),
        ("I don't have insurance", "self-pay", True),
        ("Medicaid", "Medicaid", False),
    ],
)
def test_insurance_known_self_pay_and_unknown_recorded(text: str, name: str, accepted: bool) -> None:
    parsed = answers.parse_insurance(text, practice().insurers)
    assert parsed is not None and (parsed.name, parsed.accepted) == (name, accepted)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("NY", "New York"), ("i live in new jersey", "New Jersey"), ("Pensylvania", "Pennsylvania"), ("Texas", "Texas")],
)
def test_states(text: str, expected: str) -> None:
    assert answers.parse_state(text) == expected


def test_unknown_state_is_none() -> None:
    assert answers.parse_state("Narnia") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("my name is maria lopez", ("Maria", "Lopez")), ("Sam", ("Sam", None)), ("O'Neil", ("O'Neil", None))],
)
def test_names(text: str, expected: tuple) -> None:
    assert answers.parse_name(text) == expected


@pytest.mark.parametrize("text", ["12", "", "a b c d e f", "<script>"])
def test_not_names(text: str) -> None:
    assert answers.parse_name(text) is None


def test_ages_and_yes_no() -> None:
    assert [answers.parse_age(t) for t in ("I'm 15", "fifteen", "34", "abc", "200")] == [15, 15, 34, None, None]
    assert [answers.parse_yes_no(t) for t in ("Yes please", "no, please don't", "maybe")] == [True, False, None]


def test_codes_use_only_unambiguous_characters() -> None:
    codes = {new_code() for _ in range(200)}
    assert all(len(code) == 6 and set(code) <= set(CODE_ALPHABET) for code in codes)
    assert not set("0O1IL2Z5S8B") & set(CODE_ALPHABET)
    assert len(codes) > 190
    assert normalise_code(" hk7-3pq ") == "HK73PQ"
    assert normalise_code("my code is HK73PQ") == "HK73PQ"
    assert normalise_code("HK73P0") is None
