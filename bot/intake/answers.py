"""Turn free-text answers into clean values; None means 'could not understand, ask again'.

Word lists here recognise what people type; nothing here is said to the user (that is domain.yml).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Iterable, List, Tuple

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from bot.intake.us_states import US_STATES

YES_WORDS = {
    "yes",
    "y",
    "yeah",
    "yep",
    "yup",
    "sure",
    "ok",
    "okay",
    "correct",
    "right",
    "fine",
    "please",
    "absolutely",
    "definitely",
    "agree",
    "i agree",
    "that's right",
    "thats right",
    "it is",
    "go ahead",
}
NO_WORDS = {
    "no",
    "n",
    "nope",
    "nah",
    "not really",
    "don't",
    "dont",
    "do not",
    "no thanks",
    "not okay",
    "not ok",
    "better not",
    "rather not",
    "it isn't",
    "it is not",
    "not safe",
}
SKIP_WORDS = {
    "skip",
    "no preference",
    "no preferences",
    "none",
    "nothing",
    "any",
    "anyone",
    "doesn't matter",
    "does not matter",
    "don't mind",
    "dont mind",
    "not sure",
    "either",
    "no",
    "n/a",
    "pass",
}


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[!?.,;]+", " ", (text or "").lower())).strip()


def _words(text: str) -> List[str]:
    return re.findall(r"[a-z0-9+']+", (text or "").lower())


def parse_yes_no(text: str) -> bool | None:
    cleaned = _clean(text)
    if cleaned in YES_WORDS or cleaned.startswith(("yes", "yeah", "yep", "sure", "ok ", "that's fine")):
        return True
    if cleaned in NO_WORDS or cleaned.startswith(("no ", "nope", "please don't", "don't", "do not", "not ")):
        return False
    return None


def is_skip(text: str) -> bool:
    return _clean(text) in SKIP_WORDS or _clean(text).startswith(("skip", "no pref"))


def parse_care_for(text: str) -> str | None:
    words = set(_words(text))
    if words & {"child", "son", "daughter", "kid", "teen", "teenager", "children", "stepson", "stepdaughter"}:
        return "my child"
    if words & {
        "someone",
        "friend",
        "partner",
        "wife",
        "husband",
        "mother",
        "father",
        "mom",
        "dad",
        "sister",
        "brother",
        "relative",
        "else",
        "other",
        "another",
        "they",
        "them",
        "him",
        "her",
    }:
        return "someone else"
    if words & {"me", "myself", "i", "self", "mine"}:
        return "me"
    return None


WORD_NUMBERS = {
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
}


def parse_age(text: str) -> int | None:
    numbers = re.findall(r"\b\d{1,3}\b", text or "")
    if len(numbers) == 1:
        age = int(numbers[0])
        return age if 1 <= age <= 110 else None
    if not numbers:
        words = [WORD_NUMBERS[word] for word in _words(text) if word in WORD_NUMBERS]
        if words:
            return sum(words) if len(words) <= 2 else None
    return None


NAME_PREFIXES = re.compile(
    r"^(my name is|my name's|name is|i am|i'm|im|it's|its|this is|call me|her name is|his name is|"
    r"their name is|they're|she's|he's|name)\s+",
    re.IGNORECASE,
)
NAME_PART = re.compile(r"^[^\W\d_][^\W\d_'\-.]*(?:['\-.][^\W\d_]+)*\.?$")


def parse_name(text: str) -> Tuple[str, str | None] | None:
    """('Maria', 'Lopez') from 'my name is Maria Lopez'; first name alone is fine."""
    stripped = NAME_PREFIXES.sub("", (text or "").strip()).strip(" .,!")
    parts = stripped.split()
    if not 1 <= len(parts) <= 4 or len(stripped) > 80:
        return None
    if not all(NAME_PART.match(part) for part in parts):
        return None
    first = parts[0][:1].upper() + parts[0][1:]
    last = " ".join(part[:1].upper() + part[1:] for part in parts[1:]) or None
    return first, last


@dataclass(frozen=True)
class ContactAnswer:
    """Phone (E.164) and/or email found in one answer, or which of them was malformed."""

    phone: str | None = None
    email: str | None = None
    problem: str | None = None  # "phone", "email" or "nothing"


EMAIL_CANDIDATE = re.compile(r"[^\s,;<>()]+@[^\s,;<>()]+")


def parse_email(candidate: str) -> str | None:
    try:
        # No DNS lookups: offline, fast, and no one learns which addresses we check.
        return validate_email(candidate.strip(" ."), check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def parse_phone(text: str) -> str | None:
    for match in phonenumbers.PhoneNumberMatcher(text or "", "US"):
        number = match.number
        if phonenumbers.is_valid_number(number) and phonenumbers.region_code_for_number(number) in ("US", None):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    try:
        number = phonenumbers.parse(text or "", "US")
    except phonenumbers.NumberParseException:
        return None
    if phonenumbers.is_valid_number(number) and phonenumbers.region_code_for_number(number) == "US":
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


def parse_contact(text: str) -> ContactAnswer:
    email_candidates = EMAIL_CANDIDATE.findall(text or "")
    email = parse_email(email_candidates[0]) if email_candidates else None
    without_email = EMAIL_CANDIDATE.sub(" ", text or "")
    has_digits = len(re.findall(r"\d", without_email)) >= 3
    phone = parse_phone(without_email) if has_digits else None
    if (email_candidates and email is None) or (not email_candidates and "@" in (text or "")):
        return ContactAnswer(problem="email")
    if has_digits and phone is None:
        return ContactAnswer(problem="phone")
    if phone is None and email is None:
        return ContactAnswer(problem="nothing")
    return ContactAnswer(phone=phone, email=email)


def parse_method(text: str, has_phone: bool, has_email: bool) -> str | None:
    words = set(_words(text))
    if has_phone and words & {"text", "texting", "sms", "message", "txt"}:
        return "text"
    if has_email and words & {"email", "e-mail", "mail"}:
        return "email"
    if has_phone and words & {"call", "phone", "ring", "calling", "voice"}:
        return "call"
    return None


def parse_state(text: str) -> str | None:
    """The full name of a US state from a name or a postal abbreviation ('NY', 'new york')."""
    cleaned = _clean(text)
    cleaned = re.sub(r"^(i live in|i'm in|im in|i am in|in|we live in|we're in|the state of)\s+", "", cleaned)
    cleaned = re.sub(r"\s+state$", "", cleaned)
    for abbreviation, name in US_STATES.items():
        if cleaned in (abbreviation.lower(), name.lower()):
            return name
    names = {name.lower(): name for name in US_STATES.values()}
    close = difflib.get_close_matches(cleaned, list(names), n=1, cutoff=0.85)
    if close:
        return names[close[0]]
    for name_lower, name in sorted(names.items(), key=lambda item: -len(item[0])):
        if re.search(rf"\b{re.escape(name_lower)}\b", cleaned):
            return name
    return None


SELF_PAY = re.compile(
    r"self[\s-]?pay|no insurance|not insured|uninsured|out of pocket|cash|pay (it )?myself|"
    r"don't have insurance|dont have insurance|pay privately|private pay"
)
# Everyday names mapped to a word that appears in the insurer's official name.
INSURER_ALIASES = {
    "uhc": "unitedhealthcare",
    "united healthcare": "unitedhealthcare",
    "united health care": "unitedhealthcare",
    "united": "unitedhealthcare",
    "bcbs": "anthem",
    "blue cross": "anthem",
    "blue shield": "anthem",
    "empire": "anthem",
}
# Words shared by many plan names, so they cannot identify an insurer on their own.
GENERIC_INSURER_WORDS = {"blue", "cross", "shield", "health", "care", "insurance", "plan", "of", "the", "and"}


@dataclass(frozen=True)
class InsuranceAnswer:
    name: str
    accepted: bool
    self_pay: bool


def parse_insurance(text: str, accepted: Iterable[str]) -> InsuranceAnswer | None:
    cleaned = _clean(text)
    if not cleaned:
        return None
    if SELF_PAY.search(cleaned):
        return InsuranceAnswer(name="self-pay", accepted=True, self_pay=True)
    lookup = cleaned
    for alias, canonical in INSURER_ALIASES.items():
        lookup = re.sub(rf"\b{re.escape(alias)}\b", canonical, lookup)
    said = set(_words(lookup))
    for insurer in accepted:
        distinctive = set(_words(insurer)) - GENERIC_INSURER_WORDS
        if distinctive & said:
            return InsuranceAnswer(name=insurer, accepted=True, self_pay=False)
    if len(cleaned) < 2 or len(cleaned) > 80:
        return None
    # Not on our list: recorded as typed for the intake team to check, never refused here.
    return InsuranceAnswer(name=(text or "").strip()[:80], accepted=False, self_pay=False)


def parse_care_type(text: str) -> str | None:
    words = set(_words(text))
    if words & {
        "prescriber",
        "psychiatrist",
        "medication",
        "medications",
        "meds",
        "med",
        "both",
        "coordinated",
        "prescription",
        "psychiatry",
        "pills",
    }:
        return "therapy with a prescriber"
    if words & {"therapy", "only", "just", "talk", "counseling", "counselling", "no"}:
        return "therapy only"
    return None


def parse_format(text: str) -> str | None:
    words = set(_words(text))
    if is_skip(text) or words & {"either", "both", "whatever"}:
        return "no preference"
    if words & {"online", "video", "virtual", "remote", "telehealth", "zoom"}:
        return "online"
    if words & {"person", "office", "in-person", "face"}:
        return "in person"
    return None


def parse_gender(text: str) -> str | None:
    words = set(_words(text))
    if is_skip(text):
        return "no preference"
    if words & {"nonbinary", "non-binary", "enby", "nb", "trans"}:
        return "nonbinary"
    if words & {"woman", "female", "women", "she", "lady", "her"}:
        return "woman"
    if words & {"man", "male", "men", "he", "guy", "him"}:
        return "man"
    return None


def parse_free_preference(text: str) -> str | None:
    """Language or approaches: kept as typed (short), or 'no preference'."""
    if is_skip(text):
        return "no preference"
    stripped = (text or "").strip()
    return stripped[:120] if len(stripped) > 1 else None


def parse_affirming(text: str) -> str | None:
    if is_skip(text):
        return "no preference"
    answer = parse_yes_no(text)
    if answer is True or "affirm" in _clean(text) or "lgbt" in _clean(text):
        return "yes"
    if answer is False:
        return "no preference"
    return None
