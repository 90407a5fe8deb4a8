"""Keyword and pattern rules over lemmas (spaCy blank English + lookup lemmatizer + Matcher).

The pattern lists live in data/safety/rules.yml; see the comment at its top for the syntax. The whole
rule set (normalization + rules) is a plain dict so the trained Rasa model can carry its own copy.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Sequence, Set, Tuple

import numpy
import spacy
from spacy.attrs import LEMMA, LOWER, ORTH
from spacy.language import Language
from spacy.matcher import Matcher
from spacy.tokens import Doc

from bot.safety.levels import LEVELS, Assessment, highest, rank
from bot.safety.normalize import Normalizer

GROUP = re.compile(r"\(([^()]*)\)(\?)?")
GAP_TOKENS = 4
FIRST_PERSON = {"i", "me", "my", "myself", "mine"}
# Categories whose hits read differently when the message talks about the past or asks for help.
PAST_SENSITIVE = {"suicidal_ideation", "self_harm", "hiding_injuries", "imminent_act", "imminent_phrases", "abuse",
                  "sexual_abuse", "eating_disorder", "means_seeking"}
HELP_SENSITIVE = {"self_harm", "hiding_injuries", "eating_disorder"}
TIMEABLE = {"suicidal_ideation", "self_harm", "harm_others", "means_seeking"}
SELF_CATEGORIES = {"suicidal_ideation", "self_harm", "hiding_injuries"}
# Phrases that are imminent risk unless the message says what ordinary plan or place they are about
# ("I'm doing it tonight, asking her to prom"): an `ordinary_context` span drops them when no other
# risk hit survives in the message.
CONTEXT_SENSITIVE = {"imminent_phrases"}
MODIFIER_KEYS = ("figurative", "past_cues", "recent_cues", "help_seeking_cues", "imminent_cues", "hypothetical_cues",
                 "ordinary_context")
# Tokens looked at before a hit for a second negation cue that cancels the first ("no reason not to").
DOUBLE_NEGATION_REACH = 2
# Words too frequent to index a pattern by (see RuleSet._anchor).
COMMON_LEMMAS = {"i", "be", "my", "to", "the", "a", "an", "and", "of", "in", "on", "it", "me", "you", "that",
    "this", "do", "have", "not", "no", "will", "would", "can", "could", "just", "so", "for", "with", "he", "she",
    "they", "our", "his", "her", "their", "how", "what", "which", "why", "when", "where", "if", "about", "up",
    "out", "all", "at", "by", "from", "as", "get", "take", "go", "want", "feel", "think", "say", "tell", "know",
    "make", "need", "like", "or", "but", "myself", "someone", "friend", "mom", "dad", "son", "daughter", "partner",
    "brother", "sister", "kid", "child"}


class RuleError(ValueError):
    """A pattern in the rules file cannot be compiled."""


def expand_groups(pattern: str) -> List[str]:
    """'a (b c|d)? e' → ['a b c e', 'a d e', 'a e']."""
    match = GROUP.search(pattern)
    if not match:
        return [" ".join(pattern.split())]
    options = [option.strip() for option in match.group(1).split("|")]
    if all(_single_word(option) for option in options):
        # "(a|b)?" is the one token "a|b?": far fewer Matcher patterns than one per alternative.
        token = "|".join(options) + ("?" if match.group(2) else "")
        return expand_groups(pattern[: match.start()] + " " + token + " " + pattern[match.end():])
    if match.group(2):
        options.append("")
    expanded: List[str] = []
    for option in options:
        expanded.extend(expand_groups(pattern[: match.start()] + " " + option + " " + pattern[match.end():]))
    return expanded


def _single_word(option: str) -> bool:
    """A plain word that can join a `a|b|c` token (not "=exact", "#num", gaps or several words)."""
    return bool(option) and " " not in option and not option.startswith(("=", "#", "*", ".")) and "?" not in option


def blank_pipeline() -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.initialize()
    return nlp


@dataclass
class Hit:
    category: str
    level: str
    start: int
    end: int
    text: str
    exempt_from_negation: bool
    first_person: bool
    dropped: str = ""


@dataclass
class RuleResult:
    """The rules' verdict for one message, with the surviving hits."""

    level: str
    hits: List[Hit]
    topics: List[str]
    person_other: bool
    means_adjacent: bool
    notes: List[str] = field(default_factory=list)


class RuleSet:
    """Compiled risk rules. Build once (a few hundred ms), then call `assess_docs` per batch."""

    def __init__(self, document: Dict[str, Any], normalizer: Normalizer, nlp: Language | None = None) -> None:
        self.document = document
        self.normalizer = normalizer
        self.nlp = nlp or blank_pipeline()
        self._lemmas = self.nlp.get_pipe("lemmatizer").lookups.get_table("lemma_lookup")  # type: ignore[attr-defined]
        # The lookup table (spacy-lookups-data) as word hash → lemma hash, applied to whole documents
        # with numpy: the same lemmas as the lemmatizer pipe, ~3x faster than calling it per token.
        strings = self.nlp.vocab.strings
        self._lemma_hashes: Dict[int, int] = {int(key): strings.add(value) for key, value in self._lemmas.items()}
        self.categories: Dict[str, Dict[str, Any]] = document["categories"]
        modifiers = document.get("modifiers", {})
        self.negation_cues: Set[str] = set(_words(modifiers, "negation_cues"))
        self.clause_breaks: Set[str] = set(_words(modifiers, "clause_breaks"))
        self.negation_blockers: Set[str] = {self._lemma(word) for word in _words(modifiers, "negation_blockers")}
        self.topic_order: List[str] = list(modifiers.get("topic_order", []))
        # Hashes for the negation check.
        self._negation_cue_hashes = {strings.add(word) for word in self.negation_cues}
        self._clause_break_hashes = {strings.add(word) for word in self.clause_breaks}
        self._negation_blocker_hashes = {strings.add(word) for word in self.negation_blockers}
        # cue → next words that make it something else: "no i want to die" answers, it does not negate.
        exceptions = modifiers.get("negation_cue_exceptions") or {}
        if not isinstance(exceptions, dict):
            raise RuleError("negation_cue_exceptions must map a cue to a list of words")
        self._cue_exception_hashes: Dict[int, Set[int]] = {
            strings.add(_word(cue, "negation_cue_exceptions")): {
                strings.add(word) for word in _words(exceptions, cue, "negation_cue_exceptions")
            }
            for cue in exceptions
        }
        # One Matcher per pattern, tried only on messages that contain every word the pattern cannot
        # match without (see _matches). Indexed by the pattern's most selective required word.
        self._patterns: List[_Pattern] = []
        self._by_anchor: Dict[int, List[Tuple[int, _Pattern]]] = {}
        self._bits: Dict[frozenset, int] = {}
        self._value_masks: Dict[int, int] = {}
        self._keys: Dict[int, Tuple[str, str, bool]] = {}
        self._reference: Matcher | None = None
        self._first_person = {self.nlp.vocab.strings.add(word) for word in FIRST_PERSON}
        self._exempt: Set[Tuple[str, int]] = set()
        self._pattern_count = 0
        for name, spec in self.categories.items():
            if spec.get("level") not in LEVELS:
                raise RuleError(f"category {name}: level must be one of {LEVELS}")
            self._add(f"cat:{name}", spec.get("patterns", []))
        for key in MODIFIER_KEYS:
            self._add(f"mod:{key}", modifiers.get(key, []))

    @property
    def pattern_count(self) -> int:
        return self._pattern_count

    def _lemma(self, word: str) -> str:
        return str(self._lemmas.get(word, word))

    def _token_spec(self, word: str) -> List[Dict[str, Any]]:
        if word == "...":
            return [{"OP": "?"}] * GAP_TOKENS
        if word == "*":
            return [{"OP": "?"}]
        optional = word.endswith("?") and len(word) > 1
        word = word[:-1] if optional else word
        if word == "#num":
            return [{"LIKE_NUM": True, "OP": "?"} if optional else {"LIKE_NUM": True}]
        if word.startswith("=") and len(word) > 1:
            exact: Dict[str, Any] = {"LOWER": word[1:]}
            if optional:
                exact["OP"] = "?"
            return [exact]
        alternatives = sorted({self._lemma(option) for option in word.split("|") if option})
        if not alternatives:
            raise RuleError(f"empty token in pattern: {word!r}")
        spec: Dict[str, Any] = {"LEMMA": alternatives[0]} if len(alternatives) == 1 else {"LEMMA": {"IN": alternatives}}
        if optional:
            spec["OP"] = "?"
        return [spec]

    def _add(self, label: str, patterns: Iterable[str]) -> None:
        compiled = []
        for raw in patterns:
            for pattern in expand_groups(str(raw)):
                words = pattern.split()
                if not words:
                    continue
                tokens: List[Dict[str, Any]] = []
                for word in words:
                    tokens.extend(self._token_spec(word))
                compiled.append(tokens)
                lemmas = {self._lemma(option) for word in words for option in word.rstrip("?").split("|")}
                if lemmas & {self._lemma(cue) for cue in self.negation_cues}:
                    self._exempt.add((label, len(compiled) - 1))
        # One key per pattern so negation exemptions can be looked up per pattern.
        strings = self.nlp.vocab.strings
        for index, tokens in enumerate(compiled):
            key = f"{label}#{index}"
            sequence = _fixed_sequence(tokens, strings)
            matcher = None
            if sequence is None:
                matcher = Matcher(self.nlp.vocab)
                matcher.add(key, [tokens])
            # One bit per distinct required token; the pattern needs all its bits in the message's mask.
            mask = 0
            for words in _required_words(tokens):
                hashes = frozenset(strings.add(word) for word in words)
                bit = self._bits.setdefault(hashes, 1 << len(self._bits))
                for value in hashes:
                    self._value_masks[value] = self._value_masks.get(value, 0) | bit
                mask |= bit
            entry = _Pattern(key, strings.add(key), tokens, matcher, sequence, mask)
            self._patterns.append(entry)
            for anchor in self._anchor(tokens):
                self._by_anchor.setdefault(strings.add(anchor), []).append((mask, entry))
        self._pattern_count += len(compiled)

    @staticmethod
    def _anchor(tokens: List[Dict[str, Any]]) -> List[str]:
        """The lemmas of the pattern's most selective required token."""
        candidates = []
        for spec in tokens:
            if spec.get("OP") == "?" or not ({"LEMMA", "LOWER"} & spec.keys()):
                continue
            lemma: Any = spec.get("LEMMA", spec.get("LOWER"))
            options = [lemma] if isinstance(lemma, str) else list(lemma["IN"])
            common = all(option in COMMON_LEMMAS for option in options)
            candidates.append((common, len(options), options))
        if not candidates:
            raise RuleError(f"pattern has no required word: {tokens}")
        return min(candidates, key=lambda candidate: (candidate[0], candidate[1]))[2]

    def _matches(self, doc: Doc) -> List[Tuple[int, int, int]]:
        if not len(doc):
            return []
        # Anchors are lemmas, or exact lower-case forms for "=word" tokens. A pattern runs only when
        # the message has a word for each of its required tokens: about 2 Matcher calls per message
        # instead of ~5 calls over dozens of patterns each (a Matcher call costs per token and pattern).
        columns = doc.to_array([LEMMA, LOWER]).T.tolist()
        present = {*columns[0], *columns[1]}
        mask = 0
        for value_mask in map(self._value_masks.get, present):
            if value_mask:
                mask |= value_mask
        by_anchor = self._by_anchor
        candidates = {
            pattern
            for value in present
            for needed, pattern in by_anchor.get(value, ())
            if needed & mask == needed
        }
        found: Set[Tuple[int, int, int]] = set()
        for pattern in candidates:
            if pattern.matcher is not None:
                # Lemmas are set for every token by `docs`, so spaCy's annotation check is skipped.
                found.update(pattern.matcher(doc, allow_missing=True))
            else:
                found.update(_sequence_matches(pattern, columns))
        return sorted(found, key=lambda match: (match[1], match[2], match[0]))

    def reference_matches(self, doc: Doc) -> List[Tuple[int, int, int]]:
        """The same matches from ONE Matcher holding every pattern: slow, obviously complete (for tests)."""
        if self._reference is None:
            self._reference = Matcher(self.nlp.vocab)
            for pattern in self._patterns:
                self._reference.add(pattern.key, [pattern.tokens])
        if not len(doc):
            return []
        return sorted(set(self._reference(doc)), key=lambda match: (match[1], match[2], match[0]))

    def _key(self, match_id: int) -> Tuple[str, str, bool]:
        """(kind, name, exempt from negation) of a match key, parsed once per key."""
        parsed = self._keys.get(match_id)
        if parsed is None:
            label, index = self.nlp.vocab.strings[match_id].rsplit("#", 1)
            kind, name = label.split(":", 1)
            parsed = (kind, name, (label, int(index)) in self._exempt)
            self._keys[match_id] = parsed
        return parsed

    def normalize(self, text: str) -> str:
        return self.normalizer(text)

    def docs(self, normalized_texts: Sequence[str]) -> List[Doc]:
        """Tokenized documents with lemmas, for already normalized texts."""
        docs = []
        tokenizer: Any = self.nlp.tokenizer
        for doc in tokenizer.pipe(normalized_texts):
            if len(doc):
                orths = doc.to_array(ORTH).tolist()
                lemmas = numpy.fromiter(
                    (self._lemma_hashes.get(orth, orth) for orth in orths), numpy.uint64, len(orths)
                )
                doc.from_array([LEMMA], lemmas.reshape(-1, 1))
            docs.append(doc)
        return docs

    def assess_docs(self, docs: Sequence[Doc]) -> List[RuleResult]:
        return [self.assess_doc(doc) for doc in docs]

    def assess_doc(self, doc: Doc) -> RuleResult:
        hits: List[Hit] = []
        spans: Dict[str, List[Tuple[int, int]]] = {key: [] for key in MODIFIER_KEYS}
        seen: Set[Tuple[str, int, int]] = set()
        lowers: List[int] = []
        for match_id, start, end in self._matches(doc):
            kind, name, exempt = self._key(match_id)
            if kind == "mod":
                spans[name].append((start, end))
                continue
            if (name, start, end) in seen:
                continue
            seen.add((name, start, end))
            if not lowers:
                lowers = doc.to_array(LOWER).tolist()
            hits.append(
                Hit(
                    category=name,
                    level=self.categories[name]["level"],
                    start=start,
                    end=end,
                    text="",
                    exempt_from_negation=exempt,
                    first_person=any(lowers[i] in self._first_person for i in range(start, end)),
                )
            )
        if not hits:
            return RuleResult(level="none", hits=[], topics=[], person_other=False, means_adjacent=False)
        # Lemma, lower-case and text hashes of every token: the negation check compares hashes.
        values = doc.to_array([LEMMA, LOWER, ORTH]).T.tolist()
        tokens: _TokenValues = (values[0], values[1], values[2])
        for hit in hits:
            if any(start < hit.end and hit.start < end for start, end in spans["figurative"]):
                hit.dropped = "figurative"
            elif not hit.exempt_from_negation and self._negated(tokens, hit):
                hit.dropped = "negated"
            if not hit.dropped and hit.category == "third_party" and spans["hypothetical_cues"]:
                hit.dropped = "hypothetical"
        if spans["ordinary_context"] and not any(
            not hit.dropped and hit.level != "none" and hit.category not in CONTEXT_SENSITIVE for hit in hits
        ):
            # Only when nothing else in the message is risk: with "I want to kill myself" next to it,
            # "I'm on the roof, where did you park?" stays imminent.
            for hit in hits:
                if not hit.dropped and hit.category in CONTEXT_SENSITIVE:
                    hit.dropped = "ordinary-context"
        alive = [hit for hit in hits if not hit.dropped]
        # Text only for what is reported: the longest surviving hit per category and the dropped ones.
        longest: Dict[str, Hit] = {}
        for hit in alive:
            best = longest.get(hit.category)
            if best is None or hit.end - hit.start > best.end - best.start:
                longest[hit.category] = hit
        for hit in [*longest.values(), *(hit for hit in hits if hit.dropped)]:
            hit.text = doc[hit.start : hit.end].text
        return self._decide(alive, spans, hits)

    def _negated(self, tokens: _TokenValues, hit: Hit) -> bool:
        """A negation cue inside the hit or up to 3 tokens before it, in the same clause, not blocked.

        Two cues cancel out ("I have no reason not to kill myself"): the second may sit up to
        DOUBLE_NEGATION_REACH tokens further back than the first.
        """
        lemmas, _, orths = tokens
        begin = hit.start
        for position in range(hit.start - 1, max(-1, hit.start - 4 - DOUBLE_NEGATION_REACH), -1):
            if lemmas[position] in self._clause_break_hashes or orths[position] in self._clause_break_hashes:
                break
            begin = position
        cues = [
            position
            for position in range(begin, hit.end)
            if self._is_cue(tokens, position)
            and self._negation_blocker_hashes.isdisjoint(lemmas[position + 1 : hit.end])
        ]
        in_reach = any(position >= hit.start - 3 for position in cues)
        return in_reach and len(cues) % 2 == 1

    def _is_cue(self, tokens: _TokenValues, position: int) -> bool:
        lemmas, lowers, _ = tokens
        if lemmas[position] in self._negation_cue_hashes:
            cue = lemmas[position]
        elif lowers[position] in self._negation_cue_hashes:
            cue = lowers[position]
        else:
            return False
        following = lowers[position + 1] if position + 1 < len(lowers) else None
        return following not in self._cue_exception_hashes.get(cue, ())

    def _decide(self, alive: List[Hit], spans: Dict[str, List[Tuple[int, int]]], all_hits: List[Hit]) -> RuleResult:
        notes: List[str] = [f"dropped:{hit.dropped}:{hit.category}:'{hit.text}'" for hit in all_hits if hit.dropped]
        categories = {hit.category for hit in alive}
        person_other = any(self.categories[hit.category].get("person") == "other" for hit in alive)
        past = bool(spans["past_cues"]) and not spans["recent_cues"]
        helping = bool(spans["help_seeking_cues"]) and not spans["recent_cues"]
        timed = bool(spans["imminent_cues"])
        levels: List[str] = []
        for hit in alive:
            level = hit.level
            if level == "none":
                continue
            if person_other and hit.category in SELF_CATEGORIES and not hit.first_person:
                # "My son said he doesn't want to live": someone else's words, answered as a concern.
                level = "concern"
            elif past and hit.category in PAST_SENSITIVE:
                level, reason = "concern", "past"
                notes.append(f"lowered:{reason}:{hit.category}")
            elif helping and hit.category in HELP_SENSITIVE:
                notes.append(f"lowered:help-seeking:{hit.category}")
                level = "concern"
            if timed and hit.category in TIMEABLE and rank(level) >= rank("acute"):
                notes.append(f"raised:time-or-plan:{hit.category}")
                level = "imminent"
            levels.append(level)
        level = highest(*levels) if levels else "none"
        topics = self._topics(categories, person_other)
        return RuleResult(
            level=level,
            hits=alive,
            topics=topics,
            person_other=person_other,
            means_adjacent="means_adjacent" in categories,
            notes=notes,
        )

    def _topics(self, categories: Set[str], person_other: bool) -> List[str]:
        found: Set[str] = set()
        abuse = bool(categories & {"abuse", "sexual_abuse"})
        if abuse and "child_signal" in categories:
            found.add("child_abuse")
        for name in categories:
            topic = self.categories[name].get("topic")
            if topic:
                found.add(topic)
        ordered = [topic for topic in self.topic_order if topic in found]
        if person_other:
            ordered.append("third_party")
        return ordered


def rule_assessment(result: RuleResult) -> Assessment:
    """The rules' part of an assessment (the classifier may raise it later, never lower it)."""
    longest: Dict[str, Hit] = {}
    for hit in result.hits:
        if hit.level != "none" and hit.text and (
            hit.category not in longest or len(hit.text) > len(longest[hit.category].text)
        ):
            longest[hit.category] = hit
    reasons = [f"rule:{hit.category}:'{hit.text}'" for hit in longest.values()]
    reasons += [f"note:{note}" for note in result.notes]
    categories = sorted({hit.category for hit in result.hits if hit.level != "none"})
    return Assessment(
        level=result.level,
        score=1.0 if result.level != "none" else 0.0,
        reasons=reasons,
        categories=categories,
        topic=result.topics[0] if result.topics else "general",
        means_adjacent=result.means_adjacent,
    )


# A document's token lemmas, lower-case forms and texts, as string hashes.
_TokenValues = Tuple[List[int], List[int], List[int]]


@dataclass(frozen=True, eq=False)
class _Pattern:
    """One compiled pattern, its own Matcher, and the words it cannot match without."""

    key: str
    match_id: int
    tokens: List[Dict[str, Any]]
    # A Matcher, or None when the pattern is a fixed sequence of words (matched in Python, see below).
    matcher: Matcher | None
    sequence: Tuple[Tuple[int, frozenset], ...] | None
    # One bit per required token (the set of lemmas or "=exact" forms it accepts), see RuleSet._bits.
    mask: int


def _fixed_sequence(tokens: List[Dict[str, Any]], strings: Any) -> Tuple[Tuple[int, frozenset], ...] | None:
    """(column, accepted hashes) per token if no token is optional or a number; column 0 lemma, 1 lower.

    Such a pattern matches exactly where its tokens match one after another, which a few set lookups
    find faster than a Matcher call (about half of the patterns that run are of this kind).
    """
    sequence = []
    for spec in tokens:
        if "OP" in spec or len(spec) != 1:
            return None
        attribute, value = next(iter(spec.items()))
        if attribute not in ("LEMMA", "LOWER"):
            return None
        words = [value] if isinstance(value, str) else list(value["IN"])
        sequence.append((0 if attribute == "LEMMA" else 1, frozenset(strings.add(word) for word in words)))
    return tuple(sequence)


def _sequence_matches(pattern: _Pattern, columns: List[List[int]]) -> List[Tuple[int, int, int]]:
    """(match id, start, end) wherever the pattern's fixed sequence occurs; columns: lemmas, lowers."""
    sequence = pattern.sequence or ()
    length = len(sequence)
    first_column, first_hashes = sequence[0]
    first = columns[first_column]
    found = []
    for start in range(len(first) - length + 1):
        if first[start] in first_hashes and all(
            columns[column][start + offset] in hashes for offset, (column, hashes) in enumerate(sequence[1:], 1)
        ):
            found.append((pattern.match_id, start, start + length))
    return found


def _required_words(tokens: List[Dict[str, Any]]) -> List[List[str]]:
    """For each non-optional word token of a compiled pattern, the values it accepts."""
    required = []
    for spec in tokens:
        if spec.get("OP") == "?":
            continue
        value: Any = spec.get("LEMMA", spec.get("LOWER"))
        if value is None:
            continue  # "#num": any number
        required.append([value] if isinstance(value, str) else list(value["IN"]))
    return required


def _word(value: Any, where: str) -> str:
    """A word from the rules file; YAML reads bare yes/no/on/off/true/false/null as other types."""
    if not isinstance(value, str):
        raise RuleError(f"{where}: {value!r} is not a word (quote it in the YAML file)")
    return value


def _words(document: Dict[str, Any], key: str, where: str = "") -> List[str]:
    return [_word(value, where or key) for value in document.get(key) or []]


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch
