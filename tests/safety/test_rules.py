"""The keyword/pattern rules alone (data/safety/rules.yml): levels, negation, figurative use, slang."""

from __future__ import annotations

import pytest

from bot.safety.data_files import load_rule_documents
from bot.safety.normalize import Normalizer
from bot.safety.rules import RuleError, RuleSet, expand_groups

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
