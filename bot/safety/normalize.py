"""Text normalization shared by the rules and the classifier (slang, typos, spelling variants)."""

from __future__ import annotations

import re
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

    def __init__(self, replacements: List[Tuple[str, str]], words: Dict[str, str] | None = None) -> None:
        self._compiled = [(re.compile(pattern), replacement) for pattern, replacement in replacements]
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
        for pattern, replacement in self._compiled:
            text = pattern.sub(replacement, text)
        if self._word_pattern is not None:
            text = self._word_pattern.sub(lambda match: self._words[match.group(0)], text)
        return SPACES.sub(" ", text).strip()
