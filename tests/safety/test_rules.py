"""The keyword/pattern rules alone (data/safety/rules.yml): levels, negation, figurative use, slang."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, List, Tuple

import pytest
import yaml

from bot.safety.data_files import NORMALIZE_FILE, RULES_FILE, load_rule_documents
from bot.safety.levels import rank
from bot.safety.normalize import Normalizer
from bot.safety.rules import RuleError, RuleSet, expand_groups

PROBES = Path(__file__).parent / "probes"

# Sentences written for these tests (not copied from the training examples).
CASES = [
    # imminent: an act under way, means in hand with intent, a time set
    ("imminent", "i swallowed all my sleeping pills twenty minutes ago"),
    ("imminent", "I'm going to kill myself tonight, I have a plan"),
    ("imminent", "im standing on the bridge right now"),
    ("imminent", "my boyfriend just overdosed and he won't wake up"),
    # generalized patterns (2026-11-22): completion markers, danger locations, set times
    ("imminent", "i already swallowed them all"),
    ("imminent", "finished the entire bottle of my sertraline an hour ago"),
    ("imminent", "sitting on the railing of the overpass"),
    ("imminent", "i'll be dead before sunrise"),
    ("imminent", "the knife is against my wrist"),
    # acute: ideation (explicit, passive, slang, typos, caps), self-harm, means, abuse, ED, voices, others
    ("acute", "I really want to end my life"),
    ("acute", "sometimes i wish i could go to sleep and never wake up"),
    ("acute", "KMS"),
    ("acute", "been thinking about unaliving myself"),
    ("acute", "the sewerslide thoughts are back"),
    ("acute", "i wnat to kil myslef"),
    ("acute", "I WANT TO DIE"),
    ("acute", "i want to diiiie"),
    ("acute", "everyone would be better off if i was dead"),
    ("acute", "I burned myself with a lighter again"),
    ("acute", "what's a lethal amount of ibuprofen"),
    ("acute", "how many pills would it take to not wake up"),
    ("acute", "how do I hide the cuts on my thighs at gym class"),
    ("acute", "my stepdad hits me and I'm scared to go home"),
    ("acute", "I make myself vomit after dinner every night"),
    ("acute", "the voices keep telling me to hurt myself"),
    ("acute", "I have urges to hurt my baby"),
    ("acute", "id rather be dead than face tomorrow"),
    ("acute", "what amount of insulin is lethal"),
    ("acute", "I wear a hoodie all summer so nobody sees my arms"),
    ("acute", "i restrict until i get dizzy"),
    # concern: third party, past self-harm while seeking help, hopelessness
    ("concern", "my son told me he wants to kill himself"),
    ("concern", "I self-harmed a lot when I was a teenager, is DBT right for me?"),
    ("concern", "I feel so hopeless lately"),
    ("concern", "I'm a burden and nothing i do matters"),
    ("concern", "after my suicide attempt in college I never got therapy, can I start now?"),
    # none: questions about self-harm and therapy; figurative and technical language
    ("none", "how long does therapy for self-harm take"),
    ("none", "what are the warning signs that my teen is self-harming"),
    ("none", "is self-harm attention seeking"),
    ("none", "this commute is killing me"),
    ("none", "how do I kill a python process"),
    ("none", "I'd die for a pizza right now"),
    ("none", "I'm not suicidal, I only want to learn about DBT"),
    ("none", "I would never hurt myself, I just struggle with anxiety"),
    ("none", "I cut myself shaving this morning"),
    ("none", "I want to dye my hair purple"),
    ("none", "what is the suicide hotline number"),
    ("none", "we're hanging out at the mall tonight"),
    ("none", "I cut my bangs way too short"),
    ("none", "can I crash at your place after the concert"),
    ("none", "I nearly died of embarrassment in class"),
    ("none", "standing on the edge of the stage during the concert"),
    ("none", "how long should the rope be for a tire swing"),
    ("none", "I'm reading about the history of suicide prevention"),
    ("none", "we lit the charcoal for the barbecue"),
    ("none", "I already took it with breakfast"),
    ("none", "I lost my streak on my language app"),
    ("none", "which knot should I use to tie a rope to the tree for the swing"),
    # issue 3: look-alikes that used to be false crises
    ("none", "what's a lethal dose of caffeine for a cat"),
    ("none", "the rope for the swing broke"),
    ("none", "my cut is healing nicely"),
    ("none", "I'd rather die than do karaoke"),
    ("none", "I'm doing it tonight, asking her to prom"),
]


@pytest.mark.parametrize(("expected", "text"), CASES)
def test_rule_level(rules_detector, expected: str, text: str) -> None:
    assessment = rules_detector.assess(text)
    assert assessment.level == expected, (text, assessment.reasons)


def test_risk_buried_at_the_end_of_a_very_long_message(rules_detector) -> None:
    filler = "I had a long day at work and the bus was late again. " * 400
    assessment = rules_detector.assess(filler + "Honestly I just want to kill myself.")
    assert assessment.level == "acute"


def test_negation_in_another_clause_does_not_hide_risk(rules_detector) -> None:
    assert rules_detector.assess("I'm not okay, I want to die").level == "acute"
    assert rules_detector.assess("I'm not sure if I want to live anymore").level == "acute"


def test_recent_act_is_not_lowered_by_a_help_seeking_frame(rules_detector) -> None:
    assert rules_detector.assess("I'm scared to tell my therapist I cut myself last night").level == "acute"
    assert rules_detector.assess("I'm scared to tell my therapist I self-harm").level == "concern"


def test_topics_pick_the_right_crisis_line(rules_detector) -> None:
    assert rules_detector.assess("my dad hits me every night and I'm 12").topic == "child_abuse"
    assert rules_detector.assess("my husband chokes me when he's angry").topic == "domestic_abuse"
    assert rules_detector.assess("I was raped at a party").topic == "sexual_assault"
    assert rules_detector.assess("I haven't eaten in five days").topic == "eating_disorder"
    assert rules_detector.assess("I'm trans and I want to die").topic == "lgbtq"
    assert rules_detector.assess("I'm a veteran and I keep thinking about suicide").topic == "veteran"
    assert rules_detector.assess("my friend says she wants to die").topic == "third_party"


def test_method_adjacent_messages_are_marked_but_not_risk(rules_detector) -> None:
    for text in ("where can I buy pesticides?", "what's the tallest bridge near me"):
        assessment = rules_detector.assess(text)
        assert (assessment.level, assessment.means_adjacent) == ("none", True), text
    assert rules_detector.assess("where can I find a therapist near me").means_adjacent is False


def test_reasons_name_the_rule_that_fired(rules_detector) -> None:
    assessment = rules_detector.assess("I want to kill myself")
    assert any(reason.startswith("rule:suicidal_ideation:") for reason in assessment.reasons)


def test_group_expansion() -> None:
    assert expand_groups("a (b c|d)? e") == ["a b c e", "a d e", "a e"]
    # Groups of single words become one alternatives token (one Matcher pattern, not one per word).
    assert expand_groups("a (b|c)? (d|=e) f") == ["a b|c? d f", "a b|c? =e f"]


def test_a_pattern_without_a_required_word_is_refused() -> None:
    documents = load_rule_documents()
    broken = {"categories": {"x": {"level": "acute", "patterns": ["* ..."]}}, "modifiers": {}}
    with pytest.raises(RuleError):
        RuleSet(broken, Normalizer.from_dict(documents["normalize"]))


def test_normalizer_undoes_slang_leetspeak_and_stretching() -> None:
    normalize = Normalizer.from_dict(load_rule_documents()["normalize"])
    assert normalize("I wanna KMS rn") == "i want to kill myself right now"
    assert normalize("su1c1de") == "suicide"
    assert normalize("I can't go on") == "i can not go on"
    assert normalize("self-harming") == "selfharm"


def test_lone_surrogates_do_not_break_the_normalizer() -> None:
    from bot.safety.normalize import Normalizer

    assert Normalizer([]).__call__("hi \ud800 there") == "hi ? there"


def _probe_lines(name: str) -> List[str]:
    lines = (PROBES / name).read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def _risk_probes() -> List[Tuple[str, str]]:
    return [(level.strip(), text) for level, text in (line.split(" | ", 1) for line in _probe_lines("risk.txt"))]


def test_everyday_sentences_with_risk_words_are_not_risk(rules_detector) -> None:
    # ~350 sentences about cooking, sport, DIY, pets, medicine, fiction and games (tests/safety/probes/).
    texts = _probe_lines("everyday_none.txt")
    assert len(texts) >= 300
    assessments = rules_detector.assess_many(texts)
    flagged = [(text, a.level, a.reasons) for text, a in zip(texts, assessments, strict=True) if a.level != "none"]
    assert flagged == []


def test_risk_probes_reach_their_level(rules_detector) -> None:
    # Slang, typos, capitals, no punctuation, long messages, "asking for a friend", time words, hiding.
    probes = _risk_probes()
    assert len(probes) >= 300
    assessments = rules_detector.assess_many([text for _, text in probes])
    pairs = list(zip(probes, assessments, strict=True))
    low = [(text, expected, a.level) for (expected, text), a in pairs if rank(a.level) < rank(expected)]
    assert low == []
    imminent = [a.level for (expected, _), a in pairs if expected == "imminent"]
    assert set(imminent) == {"imminent"}


def _walk(node: Any, path: str) -> Iterator[Tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield f"{path}/key", key
            yield from _walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{path}/{index}")
    else:
        yield path, node


@pytest.mark.parametrize("path", [RULES_FILE, NORMALIZE_FILE])
def test_every_word_in_the_safety_files_is_a_string(path: Path) -> None:
    # YAML reads a bare no/yes/on/off/true/false/null/~ as a bool or None: `no` was never a negation cue.
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert [(where, value) for where, value in _walk(document, "") if not isinstance(value, str)] == []


def test_a_yaml_bool_in_a_word_list_is_refused() -> None:
    documents = load_rule_documents()
    normalizer = Normalizer.from_dict(documents["normalize"])
    broken = yaml.safe_load("categories: {}\nmodifiers: {negation_cues: [not, no]}")
    with pytest.raises(RuleError, match="quote it"):
        RuleSet(broken, normalizer)
    broken = yaml.safe_load("categories: {}\nmodifiers: {negation_cue_exceptions: {no: [i]}}")
    with pytest.raises(RuleError, match="quote it"):
        RuleSet(broken, normalizer)


@pytest.mark.parametrize(
    "text",
    [
        "I have no intention of hurting myself, I just want someone to talk to",
        "I have no plans to end my life, I want help with my mood",
        "no thoughts of killing myself, just stress",
        "I no longer want to die, therapy helped",
    ],
)
def test_no_negates_what_follows_it(rules_detector, text: str) -> None:
    assert rules_detector.assess(text).level == "none", rules_detector.assess(text).reasons


@pytest.mark.parametrize(
    ("expected", "text"),
    [
        ("acute", "no one would miss me"),
        ("acute", "I see no reason to live"),
        ("acute", "I have no reason to keep living"),
        ("concern", "there's no way out"),
        ("concern", "I have no future"),
        ("concern", "there's no point anymore"),
        # "no" answering a question, idioms, and a double negation
        ("acute", "no i want to die"),
        ("acute", "no honestly i want to kill myself"),
        ("acute", "no wonder i want to die"),
        ("acute", "no joke i want to kill myself"),
        ("acute", "i have no reason not to kill myself"),
        ("acute", "no matter what i do i want to die"),
    ],
)
def test_no_does_not_hide_risk(rules_detector, expected: str, text: str) -> None:
    assessment = rules_detector.assess(text)
    assert assessment.level == expected, (text, assessment.reasons)


def test_two_negations_cancel_but_one_still_negates(rules_detector) -> None:
    assert rules_detector.assess("I'm not going to kill myself").level == "none"
    assert rules_detector.assess("I can't not think about killing myself").level == "acute"


def test_an_ordinary_plan_drops_only_the_ambiguous_imminent_phrases(rules_detector) -> None:
    assert rules_detector.assess("I won't be here after tonight").level == "imminent"
    assert rules_detector.assess("I won't be here after tonight, my flight is at 6am").level == "none"
    assert rules_detector.assess("I'm on the roof, where did you park?").level == "none"
    # An act under way is never explained away by a trip in the same message.
    assert rules_detector.assess("I swallowed all my pills, my flight is at 6am").level == "imminent"
    assert rules_detector.assess("I'm on the roof, where did you park? I want to kill myself").level == "imminent"


def test_a_set_time_or_means_at_hand_makes_it_imminent(rules_detector) -> None:
    for text in (
        "i'm going to kill myself once everyone is asleep",
        "i'm going to kill myself tomorrow",
        "i'm going to end it this weekend, the pills are in my drawer",
        "i took something to end it",
    ):
        assert rules_detector.assess(text).level == "imminent", text


def test_apostrophe_s_is_read_as_is(rules_detector) -> None:
    # spaCy's lookup table lemmatizes "'s" as "have", so "there's no hope" never met "there be no hope".
    normalize = Normalizer.from_dict(load_rule_documents()["normalize"])
    assert normalize("What's the point, there's no hope") == "what is the point, there is no hope"
    assert rules_detector.assess("there's no hope").level == "concern"
    assert rules_detector.assess("honestly what's the point of me being alive").level == "acute"
