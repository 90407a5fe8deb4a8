"""Text normalization shared by the rules and the classifier (slang, typos, spelling variants)."""

from __future__ import annotations

import re
import sre_constants
import sre_parse
from pathlib import Path
from typing import Any, Dict, List, Tuple

import yaml

# Digits and symbols used as letters ("su1c1de", "k!ll"), only inside words that also have letters.
LEET = str.maketrans({"1": "i", "3": "e", "0": "o", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"})
LEET_WORD = re.compile(r"\b(?=[a-z0-9@$!]*[a-z])(?=[a-z0-9@$!]*[013457@$!][a-z])[a-z0-9@$!]+\b")
REPEATS = re.compile(r"([a-z])\1{2,}")
APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'", "´": "'"})
SPACES = re.compile(r"\s+")


class Normalizer:
    """Lower-cases, undoes letter-stretching and leetspeak, then applies the replacement list."""

    def __init__(
        self,
        replacements: List[Tuple[str, str]],
        words: Dict[str, str] | None = None,
        skip_patterns_by_text: bool = True,
    ) -> None:
        self.skip_patterns_by_text = skip_patterns_by_text  # False: run every pattern (the slow reference)
        # Each pattern with the longest piece of plain text it cannot match without: most messages
        # contain none of them, and `in` is ~10x cheaper than running the substitution.
        self._compiled = [
            (required_text(pattern), re.compile(pattern), replacement) for pattern, replacement in replacements
        ]
        self._words = {key.lower(): value for key, value in (words or {}).items()}
        # Longest first, so "my self" wins over "my"; one regex pass for the whole word list.
        alternatives = sorted(self._words, key=len, reverse=True)
        self._word_pattern = (
            re.compile(r"(?<![\w'])(?:" + "|".join(re.escape(word) for word in alternatives) + r")(?![\w'])")
            if alternatives
            else None
        )

    @classmethod
    def from_dict(cls, document: Dict[str, Any]) -> Normalizer:
        patterns = [(str(pair[0]), str(pair[1])) for pair in document.get("patterns", [])]
        words = {str(key): str(value) for key, value in (document.get("words") or {}).items()}
        return cls(patterns, words)

    @classmethod
    def from_file(cls, path: Path) -> Normalizer:
        return cls.from_dict(yaml.safe_load(path.read_text(encoding="utf-8")) or {})

    def __call__(self, text: str) -> str:
        # Lone surrogates (possible in JSON) cannot be hashed by spaCy; they carry no meaning here.
        text = text.encode("utf-8", "replace").decode("utf-8")
        text = text.translate(APOSTROPHES).lower()
        text = LEET_WORD.sub(lambda match: match.group(0).translate(LEET), text)
        # "diiiie", "killlll": three or more of a letter become two ("kiiill" → "kiill" is left to the list).
        text = REPEATS.sub(r"\1\1", text)
        for required, pattern, replacement in self._compiled:
            if required in text or not self.skip_patterns_by_text:
                text = pattern.sub(replacement, text)
        if self._word_pattern is not None:
            text = self._word_pattern.sub(lambda match: self._words[match.group(0)], text)
        return SPACES.sub(" ", text).strip()


def required_text(pattern: str) -> str:
    """The longest run of literal characters at the top level of a regular expression ('' if none).

    Every match contains it, so a text without it cannot change under `sub`. Runs inside groups,
    alternatives and repeats are not used (they may be skipped); case-insensitive patterns get ''.
    """
    parsed = sre_parse.parse(pattern)
    if parsed.state.flags & sre_constants.SRE_FLAG_IGNORECASE:
        return ""
    best, run = "", ""
    for opcode, argument in parsed.data:
        if opcode is sre_constants.LITERAL:
            run += chr(int(argument))  # type: ignore[call-overload]
        else:
            best, run = max(best, run, key=len), ""
    return max(best, run, key=len)
